"""A content-keyed on-disk cache of decoded datasets, read back as memory maps.

A cache entry is a folder ``<cache_dir>/<kind>-<key>/`` holding ``images.npy`` (uint8, memory
mapped on load), optional ``labels.npy`` / ``partition.npy`` and ``meta.json``. The key hashes
everything the result depends on (file names, sizes and modification times, image size, crop
recipe, channels, code version), so a change to any of them builds a new entry. Entries are
written to a temporary folder and renamed into place, so an interrupted build leaves nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vaekit.data.dataset import ImageDataset

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$VAEKIT_CACHE`` or ``~/.cache/vaekit``."""
    return Path(os.environ.get("VAEKIT_CACHE", Path.home() / ".cache" / "vaekit"))


def cache_key(parts: dict[str, Any]) -> str:
    """A short stable hash of ``parts`` (JSON-serialisable)."""
    blob = json.dumps({"version": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


Builder = Callable[[Path], ImageDataset]


def cached_dataset(cache_dir: Path | str | None, kind: str, parts: dict[str, Any], build: Builder) -> ImageDataset:
    """Load the entry for ``parts``, or run ``build(tmp_folder)`` and store its result.

    ``build`` may allocate its image array as a memory map inside ``tmp_folder`` (see
    ``allocate_images``) so that large datasets never need to fit in memory twice.
    """
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    entry = root / f"{kind}-{cache_key(parts)}"
    if (entry / "meta.json").is_file():
        return _read(entry)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=root))
    try:
        dataset = build(tmp)
        _write(tmp, dataset, parts)
        del dataset
        try:
            os.replace(tmp, entry)
        except OSError:  # another process stored the same entry first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _read(entry)


def allocate_images(folder: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A writable uint8 memory map ``folder/images.npy`` of ``shape``."""
    return np.lib.format.open_memmap(folder / "images.npy", mode="w+", dtype=np.uint8, shape=shape)


def _write(folder: Path, dataset: ImageDataset, parts: dict[str, Any]) -> None:
    target = folder / "images.npy"
    if isinstance(dataset.images, np.memmap) and Path(dataset.images.filename) == target:
        dataset.images.flush()
    else:
        target.unlink(missing_ok=True)  # a map of the old file stays valid after unlinking
        np.save(target, np.ascontiguousarray(dataset.images, dtype=np.uint8))
    if dataset.labels is not None:
        np.save(folder / "labels.npy", dataset.labels)
    if dataset.partition is not None:
        np.save(folder / "partition.npy", dataset.partition.astype(np.uint8))
    meta = {"label_names": dataset.label_names, "names": dataset.names, "source": dataset.source, "key": parts}
    (folder / "meta.json").write_text(json.dumps(meta, default=str))


def _read(entry: Path) -> ImageDataset:
    meta = json.loads((entry / "meta.json").read_text())

    def optional(name: str) -> np.ndarray | None:
        path = entry / name
        return np.load(path) if path.is_file() else None

    return ImageDataset(
        images=np.load(entry / "images.npy", mmap_mode="r"),
        labels=optional("labels.npy"),
        label_names=meta["label_names"],
        names=meta["names"],
        partition=optional("partition.npy"),
        source=meta["source"],
    )
