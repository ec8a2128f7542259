"""``.npy`` / ``.npz`` files are data: shaped by the config's recipe, labels taken along, never unpickled."""

from __future__ import annotations

import numpy as np
import pytest

from vaekit.config import DataConfig
from vaekit.data import DataError, load_dataset
from vaekit.schema import ConfigError


def test_a_npy_of_gray_images_is_brought_to_the_configured_size(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "digits.npy", images)
    data = load_dataset(DataConfig(source=str(tmp_path / "digits.npy"), image_size=28))
    assert data.images.shape == (5, 1, 28, 28) and np.array_equal(data.images[:, 0], images)
    assert load_dataset(DataConfig(source=str(tmp_path / "digits.npy"), image_size=16)).images.shape == (5, 1, 16, 16)


def test_a_npz_carries_its_images_and_labels_in_any_usual_names(tmp_path):
    x = np.random.default_rng(0).random((6, 12, 12, 3), dtype=np.float32)  # NHWC floats in [0, 1]
    np.savez_compressed(tmp_path / "set.npz", x_train=x, y_train=np.arange(6) % 3)
    data = load_dataset(DataConfig(source=str(tmp_path / "set.npz"), image_size=12))
    assert data.images.shape == (6, 3, 12, 12) and data.images.dtype == np.uint8
    assert data.labels.tolist() == [0, 1, 2, 0, 1, 2]
    np.testing.assert_allclose(data.images[1, :, 2, 3] / 255, x[1, 2, 3], atol=1 / 255)


def test_pickled_object_arrays_are_refused_without_being_loaded(tmp_path):
    np.save(tmp_path / "evil.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="Python objects"):
        load_dataset(DataConfig(source=str(tmp_path / "evil.npy"), image_size=8))


def test_an_array_larger_than_the_budget_is_refused_from_its_header(tmp_path, monkeypatch):
    np.savez(tmp_path / "big.npz", images=np.zeros((64, 32, 32), np.uint8))
    monkeypatch.setenv("VAEKIT_MAX_REQUEST_BYTES", "10000")
    with pytest.raises(ConfigError, match=r"big.npz\[images\]: 64 images"):
        load_dataset(DataConfig(source=str(tmp_path / "big.npz"), image_size=8))


def test_a_npz_without_an_images_array_names_what_it_holds(tmp_path):
    np.savez(tmp_path / "odd.npz", a=np.zeros((2, 4, 4)), b=np.zeros(2))
    with pytest.raises(DataError, match=r"no images array; name it one of images, x.*\['a', 'b'\]"):
        load_dataset(DataConfig(source=str(tmp_path / "odd.npz"), image_size=4))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.5, 1e300])
def test_labels_in_an_npz_that_are_not_whole_numbers_are_one_line_naming_the_file(tmp_path, bad):
    from vaekit.data.arrays import read_arrays

    path = tmp_path / "d.npz"
    np.savez(path, images=np.zeros((3, 8, 8), np.uint8), labels=np.array([0.0, bad, 1.0]))
    with pytest.raises(DataError, match=r"d\.npz\[labels\]: labels are whole numbers") as refused:
        read_arrays(path)
    assert "\n" not in str(refused.value)
    np.savez(path, images=np.zeros((3, 8, 8), np.uint8), labels=np.array([0.0, 2.0, 1.0]))
    assert read_arrays(path)[1].tolist() == [0, 2, 1]
