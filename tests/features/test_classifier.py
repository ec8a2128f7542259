import numpy as np
import pytest

from vaekit.data.dataset import ImageDataset
from vaekit.data.shapes import load_shapes
from vaekit.features.classifier import load_classifier, save_classifier, train_classifier


def test_a_classifier_learns_a_factor_and_round_trips(tmp_path):
    data = load_shapes(n=600, image_size=16, channels=3, seed=0, cache_dir=None)
    hue_bins = np.minimum((data.labels[:, 1] * 4).astype(np.int64), 3)
    labelled = ImageDataset(images=np.asarray(data.images), labels=hue_bins)
    model, accuracy = train_classifier(labelled.subset(np.arange(500)), labelled.subset(np.arange(500, 600)), epochs=4)
    assert accuracy > 0.6  # four hue bins: chance is 0.25
    path = save_classifier(model, tmp_path / "c.safetensors")
    loaded = load_classifier(path)
    assert loaded.num_classes == 4 and loaded.image_size == 16


def test_a_classifier_learns_binary_attributes_given_as_plus_minus_one(tmp_path):
    data = load_shapes(n=600, image_size=16, channels=3, seed=0, cache_dir=None)
    attributes = np.where(data.labels[:, [1, 1]] > [0.5, 0.25], 1, -1)  # CelebA's -1 / 1 convention
    labelled = ImageDataset(images=np.asarray(data.images), labels=attributes)
    model, accuracy = train_classifier(labelled.subset(np.arange(500)), labelled.subset(np.arange(500, 600)), epochs=4)
    assert accuracy > 0.75  # per attribute, averaged; chance is about 0.5-0.75
    assert load_classifier(save_classifier(model, tmp_path / "a.safetensors")).num_classes == 2


def test_labels_that_are_neither_classes_nor_attributes_are_refused():
    data = ImageDataset(images=np.zeros((4, 1, 8, 8), np.uint8), labels=np.zeros((4, 3, 2)))
    with pytest.raises(ValueError, match="binary attributes"):
        train_classifier(data, None)


def test_not_a_classifier_file(tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not a vaekit feature classifier"):
        load_classifier(tmp_path / "other.safetensors")


def test_a_classifier_file_whose_metadata_asks_for_a_huge_network_allocates_nothing(tmp_path):
    import json
    import resource

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from vaekit.features.classifier import SmallClassifier
    from vaekit.io.checkpoints import CheckpointError

    path = save_classifier(SmallClassifier(3, 4, 16), tmp_path / "c.safetensors")
    with safe_open(str(path), "pt") as handle:
        options = json.loads(handle.metadata()["vaekit_classifier"])
    options["feature_dim"] = 3_000_000_000_000  # 12 TB of weights
    save_file(load_file(str(path)), str(path), metadata={"vaekit_classifier": json.dumps(options)})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match="does not fit this SmallClassifier"):
        load_classifier(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB


def test_the_output_layer_is_sized_by_the_classes_not_the_largest_label():
    from vaekit.features.classifier import class_indices

    data = load_shapes(n=600, image_size=16, channels=3, seed=0, cache_dir=None)
    hue_bins = np.minimum((data.labels[:, 1] * 4).astype(np.int64), 3)
    labels = np.array([-1_000_000, 7, 50_000_000, 10**15])[hue_bins]  # four classes, far-apart labels
    labelled = ImageDataset(images=np.asarray(data.images), labels=labels)
    model, accuracy = train_classifier(labelled.subset(np.arange(500)), labelled.subset(np.arange(500, 600)), epochs=4)
    assert model.num_classes == 4 and accuracy > 0.6  # the same task as above, the same accuracy
    classes, index = class_indices(np.array([3, 9, 3, 5]))
    assert classes.tolist() == [3, 5, 9] and index.tolist() == [0, 2, 0, 1]
    assert class_indices(np.array([5, 4]), classes)[1].tolist() == [1, -1]  # unseen: never predicted


@pytest.mark.parametrize("labels", [np.array([0.0, np.nan, 1.0, 1.0]), np.array([0.5, 1.0, 1.0, 0.0])])
def test_labels_that_are_not_whole_numbers_are_one_line(labels):
    data = ImageDataset(images=np.zeros((4, 1, 8, 8), np.uint8), labels=labels)
    with pytest.raises(ValueError, match="class labels must be whole numbers") as refused:
        train_classifier(data, None)
    assert "\n" not in str(refused.value)


def test_too_many_distinct_classes_are_refused_before_the_network_is_built(monkeypatch):
    from vaekit.features import classifier

    monkeypatch.setattr(classifier, "MAX_CLASSES", 3)
    data = ImageDataset(images=np.zeros((4, 1, 8, 8), np.uint8), labels=np.arange(4))
    with pytest.raises(ValueError, match="4 distinct class labels; a feature classifier takes at most 3"):
        train_classifier(data, None)


def test_the_classifiers_batch_holds_fewer_images_as_they_grow():
    from vaekit.limits import images_per_chunk

    assert images_per_chunk((3, 64, 64), 128) == 128 and images_per_chunk((3, 256, 256), 128) == 21
