from pathlib import Path

import numpy as np
import pytest
import torch

from vaekit.data import BatchLoader, ImageDataset


def _images(n=10):
    return np.arange(n, dtype=np.uint8)[:, None, None, None].repeat(2, axis=2).repeat(3, axis=3)


def test_order_is_a_pure_function_of_seed_and_epoch():
    a, b = BatchLoader(_images(), 3, seed=1), BatchLoader(_images(), 3, seed=1)
    np.testing.assert_array_equal(a.order(5), b.order(5))
    assert not np.array_equal(a.order(5), a.order(6))


def test_resuming_mid_epoch_gives_the_remaining_batches():
    loader = BatchLoader(_images(), 3, seed=1, flip=True)
    full = list(loader.epoch(2))
    resumed = list(loader.epoch(2, start=1))
    assert len(full) == 3 and len(resumed) == 2
    for x, y in zip(full[1:], resumed, strict=True):
        assert torch.equal(x, y)


def test_batches_are_floats_in_unit_range_and_cover_the_epoch():
    loader = BatchLoader(_images(), 3, seed=0, drop_last=False)
    batches = list(loader.epoch(0))
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    seen = sorted(round(v * 255) for b in batches for v in b[:, 0, 0, 0].tolist())
    assert seen == list(range(10))
    assert batches[0].dtype == torch.float32


def test_flip_mirrors_some_images_horizontally():
    images = np.zeros((64, 1, 1, 2), dtype=np.uint8)
    images[..., 0] = 255
    batch = next(BatchLoader(images, 64, flip=True, seed=0).epoch(0))
    flipped = batch[:, 0, 0, 1] == 1
    assert 10 < flipped.sum() < 54


def test_split_uses_the_source_partition_or_a_seeded_fraction():
    data = ImageDataset(images=_images(20))
    train, val = data.split("train", 0.25, seed=0), data.split("val", 0.25, seed=0)
    assert len(train) == 15 and len(val) == 5
    assert not set(train.images[:, 0, 0, 0]) & set(val.images[:, 0, 0, 0])
    parted = ImageDataset(images=_images(4), partition=np.array([0, 1, 0, 1], np.uint8))
    assert parted.split("test").images[:, 0, 0, 0].tolist() == [1, 3]


def test_flips_are_drawn_again_every_epoch():
    images = np.zeros((64, 1, 2, 2), np.uint8)
    images[:, 0, :, 0] = 255  # the left column lit: a flip moves it to the right
    loader = BatchLoader(images, 64, shuffle=False, flip=True, seed=0)
    flipped = [next(loader.epoch(epoch))[:, 0, 0, 1].numpy() for epoch in range(3)]
    assert 10 < flipped[0].sum() < 54
    assert not (flipped[0] == flipped[1]).all() and not (flipped[1] == flipped[2]).all()


def test_a_split_of_a_memory_mapped_dataset_indexes_it_and_reads_like_an_array(tmp_path):
    from vaekit.data.dataset import RowView

    images = np.lib.format.open_memmap(tmp_path / "i.npy", mode="w+", dtype=np.uint8, shape=(20, 1, 2, 2))
    images[:] = np.arange(20, dtype=np.uint8)[:, None, None, None]
    mapped = np.load(tmp_path / "i.npy", mmap_mode="r")
    train = ImageDataset(mapped).split("train", 0.25, seed=0)
    assert isinstance(train.images, RowView) and train.images.base is mapped  # nothing copied
    rows = np.asarray(train.images)[:, 0, 0, 0]
    assert len(train) == 15 and list(rows) == sorted(rows)
    assert train.images[3][0, 0, 0] == rows[3] and list(train.images[:2][:, 0, 0, 0]) == list(rows[:2])
    assert train.images[2, 0].shape == (2, 2) and train.images[:, 0].shape == (15, 2, 2)
    batch = next(iter(BatchLoader(train.images, 5, shuffle=False)))
    assert batch.shape == (5, 1, 2, 2) and (batch[:, 0, 0, 0] * 255).round().tolist() == list(rows[:5])


def test_prefetched_batches_are_the_batches_served_without_prefetch_and_shard_by_rank_alike():
    images = np.random.default_rng(0).integers(0, 256, (40, 3, 4, 4), dtype=np.uint8)
    plain = list(BatchLoader(images, 8, flip=True, seed=3).epoch(2, start=1))
    ahead = list(BatchLoader(images, 8, flip=True, seed=3, prefetch=2).epoch(2, start=1))
    assert len(plain) == len(ahead) == 4 and all(torch.equal(a, b) for a, b in zip(plain, ahead, strict=True))
    halves = [list(BatchLoader(images, 8, flip=True, seed=3, prefetch=2, shard=(r, 2)).epoch(2, 1)) for r in (0, 1)]
    for whole, first, second in zip(plain, *halves, strict=True):  # two ranks together serve the one batch
        assert torch.equal(torch.cat([first, second]), whole)


def _mapped_kb(path) -> int:
    """The resident kilobytes of this process's mappings of ``path`` (Linux)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if "-" in line.split()[0] and len(line.split()) >= 5:
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux's /proc/self/smaps")
def test_rows_of_a_memory_map_are_read_without_mapping_its_pages_into_the_process(tmp_path):
    from vaekit.data.dataset import RowView, take_rows

    np.save(tmp_path / "images.npy", np.random.default_rng(0).integers(0, 256, (512, 3, 32, 32), dtype=np.uint8))
    mapped = np.load(tmp_path / "images.npy", mmap_mode="r")
    expected = np.load(tmp_path / "images.npy")
    view = RowView(mapped, np.arange(1, 512, 2))
    for positions in (np.arange(512), np.array([5, 6, 7, 100, 3, 3, -1]), np.array([], np.int64)):
        np.testing.assert_array_equal(take_rows(mapped, positions), expected[positions])
    np.testing.assert_array_equal(view[10:20], expected[21:41:2])
    np.testing.assert_array_equal(view[3], expected[7])
    np.testing.assert_array_equal(view[[0, 2], 1], expected[[1, 5], 1])
    np.testing.assert_array_equal(np.asarray(view), expected[1::2])
    assert sum(1 for _ in view) == 256
    assert _mapped_kb(tmp_path / "images.npy") < 64  # 1.5 MB read, next to nothing mapped
    with pytest.raises(IndexError):
        take_rows(mapped, np.array([512]))


def test_a_pass_bounded_in_time_gives_its_first_batch_and_stops_after_the_bound(monkeypatch):
    from vaekit.data import loader

    clock = iter([0.0, 0.5, 1.2, 5.0, 9.0, 9.0])
    monkeypatch.setattr(loader.time, "monotonic", lambda: next(clock))
    assert list(loader.within(iter("abcdef"), 1.0)) == ["a", "b"]  # asked at 0.5 s: go on; at 1.2 s: stop
    assert list(loader.within(iter("abc"), None)) == ["a", "b", "c"]  # unbounded: every batch
    assert list(loader.within(iter("abc"), 0.0)) == ["a"]  # the first always runs
