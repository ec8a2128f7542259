"""What ``vaekit cache`` lists and removes in a cache folder: decoded entries, their aliases, partial
builds, metadata listings and kept downloads; only what vaekit names, never a user's own files."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaekit.data.cache import ENTRY_NAME, cache_root

KEPT_FOLDERS = ("streams", "mnist")  # data fetched from elsewhere: listed, never pruned or cleared
METADATA_FOLDERS = ("manifests", "shard-index")  # small listings, rebuilt on demand


@dataclass(frozen=True)
class CacheItem:
    """One thing in the cache folder: a decoded ``entry``, an ``alias`` of one, a ``partial`` build
    (``done``: its share of images decoded), ``metadata`` or ``kept`` data."""

    path: Path
    kind: str
    bytes: int
    last_used: float
    shape: tuple[int, ...] | None = None
    source: str = ""
    done: float | None = None


def cache_items(cache_dir: Path | str | None) -> list[CacheItem]:
    """Everything vaekit keeps in the cache folder, largest first; nothing that vaekit did not name
    (a cache folder pointed at the wrong place never loses a user's own files)."""
    root = cache_root(cache_dir)
    items = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if not ENTRY_NAME.fullmatch(path.name) and path.name not in KEPT_FOLDERS + METADATA_FOLDERS:
            continue
        if path.is_symlink():
            items.append(CacheItem(path, "alias", 0, path.lstat().st_mtime, source=f"-> {os.readlink(path)}"))
        elif path.name.endswith(".partial") and path.is_dir():
            items.append(_partial(path))
        elif path.is_dir() and path.name in KEPT_FOLDERS + METADATA_FOLDERS:
            kind = "kept" if path.name in KEPT_FOLDERS else "metadata"
            items.append(CacheItem(path, kind, _size(path), _newest(path)))
        elif path.is_dir() and (path / "meta.json").is_file():
            items.append(_entry(path))
    return sorted(items, key=lambda item: -item.bytes)


def remove_items(items: list[CacheItem]) -> int:
    """Remove ``items`` (never ``kept`` ones) and aliases left pointing nowhere; the bytes freed."""
    freed = 0
    for item in items:
        if item.kind == "kept":
            continue
        item.path.unlink() if item.path.is_symlink() else shutil.rmtree(item.path, ignore_errors=True)
        if item.kind == "partial":
            (item.path.parent / f"{item.path.name.removesuffix('.partial')}.lock").unlink(missing_ok=True)
        freed += item.bytes
    for folder in {item.path.parent for item in items}:
        for alias in folder.iterdir():
            if ENTRY_NAME.fullmatch(alias.name) and alias.is_symlink() and not alias.exists():
                alias.unlink(missing_ok=True)
    return freed


def _entry(path: Path) -> CacheItem:
    try:
        source = json.loads((path / "meta.json").read_text()).get("source", "")
        shape = tuple(np.load(path / "images.npy", mmap_mode="r").shape)
    except (OSError, ValueError, AttributeError):
        source, shape = "(damaged)", None
    return CacheItem(path, "entry", _size(path), (path / "meta.json").stat().st_mtime, shape, source)


def _partial(path: Path) -> CacheItem:
    done = None
    with contextlib.suppress(OSError, ValueError):
        status = np.load(path / "status.npy", mmap_mode="r")
        done = float((status != 0).mean()) if len(status) else 1.0
    return CacheItem(path, "partial", _size(path), _newest(path), done=done)


def _size(folder: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _newest(folder: Path) -> float:
    return max((p.stat().st_mtime for p in folder.rglob("*") if p.is_file()), default=folder.stat().st_mtime)
