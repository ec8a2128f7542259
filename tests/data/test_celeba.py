import numpy as np
import pytest
from PIL import Image

from vaekit.data.celeba import load_celeba, read_attributes, read_partition
from vaekit.data.dataset import TEST, TRAIN
from vaekit.data.images import DataError
from vaekit.data.sources import parse_spec


def _fake_celeba(folder, names=("000001.jpg", "000002.jpg", "000003.jpg"), count_line=True):
    (folder / "img_align_celeba").mkdir(parents=True)
    for i, name in enumerate(names):
        Image.new("RGB", (178, 218), (40 * i, 0, 0)).save(folder / "img_align_celeba" / name)
    rows = [f"{name} {' '.join(['1', '-1'][(i + j) % 2] for j in range(3))}" for i, name in enumerate(names)]
    header = ([str(len(names))] if count_line else []) + ["Smiling Male Young"]
    (folder / "list_attr_celeba.txt").write_text("\n".join(header + rows) + "\n")
    return folder


def test_attribute_file_with_and_without_count_line(tmp_path):
    for count_line in (True, False):
        folder = _fake_celeba(tmp_path / str(count_line), count_line=count_line)
        names, rows = read_attributes(folder / "list_attr_celeba.txt")
        assert names == ["Smiling", "Male", "Young"]
        assert rows["000002.jpg"].tolist() == [0, 1, 0]


def test_malformed_attribute_row_names_the_line(tmp_path):
    path = tmp_path / "list_attr_celeba.txt"
    path.write_text("2\nA B\nx.jpg 1 -1\ny.jpg 1\n")
    with pytest.raises(DataError, match=r"list_attr_celeba.txt:4: expected a file name and 2 values"):
        read_attributes(path)


def test_both_partition_spellings(tmp_path):
    (tmp_path / "p.txt").write_text("a.jpg 0\nb.jpg 1\nc.jpg 2\n")
    (tmp_path / "s.txt").write_text("a.jpg train\nb.jpg test\n")
    assert read_partition(tmp_path / "p.txt") == {"a.jpg": TRAIN, "b.jpg": TEST, "c.jpg": TEST}
    assert read_partition(tmp_path / "s.txt") == {"a.jpg": TRAIN, "b.jpg": TEST}


def test_celeba_folder_is_detected_and_loads_labels_and_split(tmp_path):
    folder = _fake_celeba(tmp_path / "celeba")
    (folder / "split_subset.txt").write_text("000001.jpg train\n000002.jpg test\n000003.jpg train\n")
    assert parse_spec(str(folder)) == ("celeba", folder)
    data = load_celeba(folder, image_size=16, crop="celeba-center140", channels=None, cache_dir=None)
    assert data.images.shape == (3, 3, 16, 16)
    assert data.label_names == ["Smiling", "Male", "Young"]
    np.testing.assert_array_equal(data.labels[:, 0], [1, 0, 1])
    assert data.partition.tolist() == [TRAIN, TEST, TRAIN]


def test_image_without_attributes_is_an_error(tmp_path):
    folder = _fake_celeba(tmp_path / "celeba")
    Image.new("RGB", (178, 218)).save(folder / "img_align_celeba" / "999999.jpg")
    with pytest.raises(DataError, match=r"no attributes for 1 image\(s\), e.g. \['999999.jpg'\]"):
        load_celeba(folder, image_size=16, crop="center", channels=None, cache_dir=None)


def test_images_the_split_file_does_not_name_are_training_images(tmp_path):
    folder = _fake_celeba(tmp_path / "celeba")
    (folder / "list_eval_partition.txt").write_text("000001.jpg 2\n")  # only the first, as a test image
    data = load_celeba(folder, image_size=16, crop="celeba-center140", channels=3, cache_dir=str(tmp_path / "c"))
    assert data.partition.tolist() == [TEST, TRAIN, TRAIN]
