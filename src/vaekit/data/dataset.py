"""The in-memory form of every data source: uint8 images in (N, C, H, W) plus optional labels."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

TRAIN, TEST = 0, 1


def take_rows(array: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``array[positions]``; rows of a memory-mapped ``.npy`` are read with ``pread`` (runs of
    consecutive rows in one call), so the file's pages stay in the page cache, shared by every
    process, and never enter this process's memory map: its RSS does not grow with what it has read
    (over an epoch, a mapped read would map the whole cache into every process)."""
    positions = np.asarray(positions)
    if not (isinstance(array, np.memmap) and array.filename and array.flags.c_contiguous and positions.ndim == 1):
        return array[positions]
    positions = np.arange(len(array))[positions] if positions.dtype == bool else positions
    positions = np.where(positions < 0, positions + len(array), positions)
    if len(positions) and (positions.min() < 0 or positions.max() >= len(array)):
        raise IndexError(f"row index out of range for {len(array)} rows")
    out = np.empty((len(positions), *array.shape[1:]), array.dtype)
    if not len(out):
        return out
    row_bytes = out[0].nbytes
    flat = out.reshape(len(out), row_bytes // out.itemsize).view(np.uint8)
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    with open(array.filename, "rb", buffering=0) as handle:
        for run in np.split(np.arange(len(positions)), breaks):
            start = array.offset + int(positions[run[0]]) * row_bytes
            view = memoryview(flat[run[0] : run[-1] + 1]).cast("B")
            got = os.preadv(handle.fileno(), [view], start)
            if got != len(view):
                raise OSError(f"{array.filename}: short read ({got} of {len(view)} bytes)")
    return out


class RowView:
    """Rows ``index`` of an image array, read only when indexed: a split of a memory-mapped dataset
    that copies nothing, so start-up memory does not grow with the dataset and processes on one
    machine share the page cache. Indexing (an int, a slice, an array of positions) reads just those
    rows as an array, as a numpy array would; ``np.asarray`` reads all of them."""

    def __init__(self, base: np.ndarray | RowView, index: np.ndarray) -> None:
        index = np.asarray(index)
        if isinstance(base, RowView):
            base, index = base.base, base.index[index]
        self.base, self.index = base, index

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.base.shape[1:])

    @property
    def filename(self) -> str | None:
        """The file the rows are read from (a memory map's), else None."""
        return getattr(self.base, "filename", None)

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    @property
    def ndim(self) -> int:
        return self.base.ndim

    def __len__(self) -> int:
        return len(self.index)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __getitem__(self, key):
        if isinstance(key, int | np.integer):
            return take_rows(self.base, self.index[[key]])[0]
        if isinstance(key, slice | list | np.ndarray):
            return take_rows(self.base, self.index[key])
        rows, rest = key[0], key[1:]  # (rows, channels, ...): the rows first, then the rest of the key
        if isinstance(rows, int | np.integer):
            return self[rows][rest]
        return self[rows][(slice(None), *rest)]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        rows = take_rows(self.base, self.index)
        return rows if dtype is None else rows.astype(dtype, copy=False)


def first_rows(images, n: int):
    """The first ``n`` rows of an image array, a ``RowView`` or lazy images, read only when a batch
    is taken (a pass that stops early, by time, reads no more than it used)."""
    if isinstance(images, np.ndarray):
        return images[:n]  # a view (a memory map's stays unread)
    return RowView(images, np.arange(min(n, len(images))))


class LazyImages:
    """Images decoded when indexed, for data that is not held as an array (tar shards): a subclass
    gives ``shape`` and ``read(positions) -> uint8 (n, C, H, W)``; indexing works as on an array,
    and splits index it without reading anything (``RowView``)."""

    shape: tuple[int, ...] = ()
    dtype = np.dtype(np.uint8)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, positions: np.ndarray, epoch: int | None = None, seed: int = 0) -> np.ndarray:
        """The images at ``positions``; ``epoch``: the training epoch they are read for (random
        crops are drawn from it and the run's ``seed``), None for a deterministic read."""
        raise NotImplementedError

    def __getitem__(self, key):
        if isinstance(key, int | np.integer):
            return self.read(np.array([int(key)]))[0]
        positions = np.arange(len(self))[key] if isinstance(key, slice) else np.asarray(key)
        return self.read(positions.astype(np.int64))

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        rows = self.read(np.arange(len(self)))
        return rows if dtype is None else rows.astype(dtype, copy=False)


def decoded_when_read(images: np.ndarray | RowView | LazyImages) -> bool:
    """Whether reading ``images`` decodes them (lazy images, or a split of them), rather than copying."""
    return isinstance(images.base if isinstance(images, RowView) else images, LazyImages)


def read_rows(
    images: np.ndarray | RowView | LazyImages, positions: np.ndarray, epoch: int | None = None, seed: int = 0
):
    """Rows ``positions`` of any image array, for training ``epoch`` of a run seeded ``seed`` (lazy
    images draw their random crops from both; arrays and memory maps ignore them)."""
    if isinstance(images, RowView) and isinstance(images.base, LazyImages):
        return images.base.read(images.index[positions], epoch, seed)
    if isinstance(images, LazyImages):
        return images.read(positions, epoch, seed)
    return images[positions] if isinstance(images, RowView) else take_rows(images, positions)


class Names(Sequence[str]):
    """Image names kept in a file (NUL-separated) and read on first use, so that a start over a
    million images holds no million strings in every process; ``take`` selects without reading."""

    def __init__(self, path: Path, count: int, index: np.ndarray | None = None) -> None:
        self.path, self.count, self.index = path, count, index
        self._read: list[str] | None = None

    @staticmethod
    def write(path: Path, names: Sequence[str]) -> None:
        path.write_bytes("\0".join(names).encode())

    def _names(self) -> list[str]:
        if self._read is None:
            every = self.path.read_bytes().decode().split("\0") if self.count else []
            if len(every) != self.count:
                raise ValueError(f"{self.path}: {len(every)} names for {self.count} images")
            self._read = every if self.index is None else [every[i] for i in self.index]
        return self._read

    def take(self, index: np.ndarray) -> Names:
        return Names(self.path, self.count, index if self.index is None else self.index[index])

    def __len__(self) -> int:
        return self.count if self.index is None else len(self.index)

    def __getitem__(self, key):
        return self._names()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __eq__(self, other) -> bool:
        return list(self) == list(other) if isinstance(other, Sequence) else NotImplemented

    __hash__ = None  # type: ignore[assignment]


@dataclass
class ImageDataset:
    """Images decoded once into uint8 ``(N, C, H, W)`` (often a read-only memory map).

    ``labels`` is ``(N,)`` (a class) or ``(N, K)`` (attributes / factors, named by ``label_names``).
    ``partition`` marks the source's own train (0) / test (1) split where it has one.
    """

    images: np.ndarray | RowView
    labels: np.ndarray | None = None
    label_names: list[str] | None = None
    names: list[str] | Names | None = None
    partition: np.ndarray | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)``."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, index: np.ndarray) -> ImageDataset:
        """The images at ``index`` (sorted positions keep memory-map reads sequential)."""
        index = np.asarray(index)

        def take(values):
            if values is None:
                return None
            if isinstance(values, Names):
                return values.take(index)
            if isinstance(values, list):
                return [values[i] for i in index]
            return values[index]

        views = isinstance(self.images, np.memmap | RowView | LazyImages)  # indexed, never copied
        return replace(
            self,
            images=RowView(self.images, index) if views else self.images[index],
            labels=take(self.labels),
            names=take(self.names),
            partition=take(self.partition),
        )

    def split(self, which: str, val_fraction: float = 0.05, seed: int = 0) -> ImageDataset:
        """``train`` or ``val``/``test``: the source's own split, else a seeded random one."""
        if which not in ("train", "val", "test"):
            raise ValueError(f"unknown split {which!r}: use train, val or test")
        if self.partition is not None:
            wanted = TRAIN if which == "train" else TEST
            return self.subset(np.flatnonzero(self.partition == wanted))
        order = np.random.default_rng(seed).permutation(len(self))
        n_val = round(len(self) * val_fraction) if len(self) > 1 else 0
        if val_fraction > 0 and len(self) > 1:
            n_val = min(max(n_val, 1), len(self) - 1)
        chosen = order[: len(self) - n_val] if which == "train" else order[len(self) - n_val :]
        return self.subset(np.sort(chosen))
