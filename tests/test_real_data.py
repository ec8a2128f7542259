"""The data sources on the real datasets in ../shared/data (skipped when that folder is absent)."""

import numpy as np
import pytest

from tests.helpers import shared_data, tiny_config
from vaekit.config import DataConfig, load_preset
from vaekit.data import load_dataset
from vaekit.training.trainer import Trainer


def test_mnist_idx_folder():
    data = load_dataset(DataConfig(source=str(shared_data("mnist")), image_size=28, crop="none"))
    assert data.images.shape == (70000, 1, 28, 28)
    assert len(data.split("train")) == 60000 and len(data.split("test")) == 10000
    assert np.bincount(data.split("train").labels).tolist()[:3] == [5923, 6742, 5958]


def test_conv_mnist_preset_learns_on_real_digits(tmp_path):
    config = load_preset("conv-mnist").with_overrides(
        {"data.source": str(shared_data("mnist")), "train.max_steps": 40, "train.log_every": 10, "train.threads": 2}
        | {"train.fit_sampler": False}  # learning is what is tested here
    )
    run = Trainer(config, tmp_path / "run").fit()
    rows = [r.split(",") for r in (run / "metrics.csv").read_text().splitlines()[1:]]
    neg_elbo = [float(r[7]) for r in rows if r[2] == "train"]
    assert neg_elbo[-1] < 0.75 * neg_elbo[0]


@pytest.mark.slow
def test_anime_faces_zip():
    data = load_dataset(
        DataConfig(source=str(shared_data("anime-faces") / "anime_faces_64x64_subset.zip"), image_size=64)
    )
    assert data.images.shape == (5000, 3, 64, 64)


@pytest.mark.slow
def test_celeba_subset_folder_with_attributes_and_split():
    data = load_dataset(DataConfig(source=str(shared_data("celeba-subset")), image_size=64, crop="celeba-center140"))
    assert data.images.shape == (6000, 3, 64, 64)
    assert data.labels.shape == (6000, 40) and "Smiling" in data.label_names
    assert len(data.split("train")) == 4800 and len(data.split("test")) == 1200


def test_small_image_folder_trains(tmp_path):
    folder = shared_data("bob-ross-paintings")
    config = tiny_config(**{"data.source": str(folder), "data.image_size": 16, "train.max_steps": 3})
    assert (Trainer(config, tmp_path / "run").fit() / "model" / "model.safetensors").is_file()


@pytest.mark.slow
def test_celeba_subset_folder_drives_train_attributes_and_edit(tmp_path):
    from vaekit.cli import main

    folder = shared_data("celeba-subset")
    run = tmp_path / "run"
    args = ["train", "--preset", "spatial-celeba64", "--data", str(folder), "--out", str(run)]
    assert main([*args, "--set", "data.image_size=16", "train.max_steps=2", "model.spatial.residual_blocks=1"]) == 0
    assert main(["attributes", str(run), "--attrs", "Smiling,Male"]) == 0
    image = tmp_path / "face.png"
    import zipfile

    with zipfile.ZipFile(next(folder.glob("*.zip"))) as archive:
        image.write_bytes(archive.read("img_align_celeba/000002.jpg"))
    assert (
        main(
            ["edit", str(run), str(image), "--attr", "Smiling=1.5", "--attr", "Male=-1", "-o", str(tmp_path / "e.png")]
        )
        == 0
    )
