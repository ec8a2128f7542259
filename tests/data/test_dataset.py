"""Datasets and their splits: every split reads its own rows, a split of a split too, lazily
decoded images included, and a small dataset keeps a held-out image."""

from __future__ import annotations

import numpy as np
import pytest

from vaekit.data.dataset import ImageDataset, RowView, read_rows


def _numbered(n: int = 20) -> np.ndarray:
    """Images whose every pixel is their row number: what a read gives away which row it read."""
    return np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 1, 2, 2)).copy()


def test_a_split_of_a_split_reads_the_rows_it_names_of_the_whole():
    images = _numbered()
    outer = RowView(images, np.array([3, 5, 7, 9, 11]))
    inner = RowView(outer, np.array([1, 4]))
    assert inner[:][:, 0, 0, 0].tolist() == [5, 11]
    assert read_rows(inner, np.array([1]))[:, 0, 0, 0].tolist() == [11]
    assert np.asarray(inner)[:, 0, 0, 0].tolist() == [5, 11]


def test_train_and_held_out_splits_read_disjoint_rows_that_cover_the_whole():
    data = ImageDataset(_numbered())
    train, val = data.split("train", 0.25, seed=3), data.split("val", 0.25, seed=3)
    seen_train = np.asarray(train.images)[:, 0, 0, 0].tolist()
    seen_val = np.asarray(val.images)[:, 0, 0, 0].tolist()
    assert len(seen_val) == 5 and not set(seen_train) & set(seen_val)
    assert sorted(seen_train + seen_val) == list(range(20))
    again = train.subset(np.array([0, 2]))  # a split of the train split
    assert np.asarray(again.images)[:, 0, 0, 0].tolist() == [seen_train[0], seen_train[2]]


@pytest.mark.parametrize("n", [2, 3, 7])
def test_a_small_dataset_keeps_one_held_out_image_whenever_a_fraction_is_asked(n):
    data = ImageDataset(_numbered(n))
    assert len(data.split("val", 0.05)) == 1 and len(data.split("train", 0.05)) == n - 1
    assert len(data.split("val", 0.0)) == 0
