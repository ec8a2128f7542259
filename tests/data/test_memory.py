"""In-memory data (arrays, tensors, datasets) as vaekit's uint8 images."""

import re

import numpy as np
import pytest
import torch

from vaekit.data import DataError
from vaekit.data.memory import fingerprint, from_memory


def test_float_images_are_rounded_to_the_nearest_level_not_truncated():
    images = np.full((2, 4, 4), 0.5, np.float32)  # 127.5 -> 128
    assert int(from_memory(images).images[0, 0, 0, 0]) == 128
    assert int(from_memory(torch.full((1, 1, 2, 2), 0.999)).images.max()) == 255


def test_boolean_images_are_black_and_white():
    images = np.zeros((2, 4, 4), bool)
    images[:, :2] = True
    assert sorted(np.unique(from_memory(images).images).tolist()) == [0, 255]


def test_the_fingerprint_changes_with_any_image_not_just_the_first():
    images = np.zeros((3, 4, 4), np.uint8)
    changed = images.copy()
    changed[2, 3, 3] = 1
    assert fingerprint(from_memory(images)) != fingerprint(from_memory(changed))


class _Items(torch.utils.data.Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (np.zeros((2, 4, 4), np.complex64), "complex numbers, not pixels"),
        (torch.zeros(2, 3, 4, 4, device="meta"), "meta device holds no values"),
        (_Items(["a", "b"]), "values are not numbers"),
        (_Items([torch.zeros(3)]), "item 0 is not an image"),
        (_Items([]), "the dataset holds no items"),
        (_Items([torch.zeros(3, 8, 8), torch.zeros(3, 8, 9)]), "item 1 is (3, 8, 9), item 0 (3, 8, 8)"),
    ],
)
def test_data_that_are_not_images_get_one_line_naming_the_problem(data, words):
    with pytest.raises(DataError, match=re.escape(words)):
        from_memory(data)


def test_a_dataset_of_float_images_is_brought_to_8_bits_item_by_item_in_one_array():
    import tracemalloc

    items = _Items([torch.full((3, 32, 32), i / 255) for i in range(200)])  # 9.8 MB as float32, 2.5 MB as uint8
    tracemalloc.start()
    try:
        images = from_memory(items).images
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [int(images[i, 0, 0, 0]) for i in (0, 1, 199)] == [0, 1, 199]
    assert peak < 2 * images.nbytes  # no list of the items beside the result, no float copy of all
