"""What ``vaekit cache`` lists and removes in a cache folder: decoded entries, their aliases, partial
builds, metadata listings and kept downloads. Ownership is checked at removal: inside a folder only
the files vaekit writes there are removed (a user's own stay, and so does the folder holding them),
an alias only when it points at an entry beside it, an entry or a build only when no process holds
its lock (a running build is skipped and said so)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaekit.data.cache import ENTRY_NAME, NAMES_FILE, RESUMABLE_MARK, FileLock, cache_root
from vaekit.schema import ConfigError

KEPT_FOLDERS = ("streams", "mnist")  # data fetched from elsewhere: listed, never pruned or cleared
METADATA_FILES = {  # small listings, rebuilt on demand: the files vaekit writes in each folder
    "manifests": re.compile(r"[0-9a-f]{24}\.npz"),
    "shard-index": re.compile(r"[0-9a-f]{32}\.npz"),
}
METADATA_FOLDERS = tuple(METADATA_FILES)
ENTRY_FILES = re.compile(  # what a decoded entry or a partial build holds
    rf"[a-z_]+\.(npy|json)|{re.escape(NAMES_FILE)}|{re.escape(RESUMABLE_MARK)}|\.[\w.-]+\.partial"
)


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
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root}: not a folder (a cache folder holds vaekit's decoded datasets)")
    items = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if not ENTRY_NAME.fullmatch(path.name) and path.name not in KEPT_FOLDERS + METADATA_FOLDERS:
            continue
        if path.is_symlink():
            if _alias_target(path) is not None:
                items.append(CacheItem(path, "alias", 0, path.lstat().st_mtime, source=f"-> {os.readlink(path)}"))
        elif path.name.endswith(".partial") and path.is_dir():
            if all(ENTRY_FILES.fullmatch(p.name) for p in path.iterdir()):
                items.append(_partial(path))
        elif path.is_dir() and path.name in KEPT_FOLDERS:
            items.append(CacheItem(path, "kept", _size(path), _newest(path)))
        elif path.is_dir() and path.name in METADATA_FOLDERS:
            own = [p for p in path.iterdir() if METADATA_FILES[path.name].fullmatch(p.name) and p.is_file()]
            if own:
                items.append(CacheItem(path, "metadata", sum(_blocks(p) for p in own), _newest(path)))
        elif path.is_dir() and (path / "meta.json").is_file():
            items.append(_entry(path))
    return sorted(items, key=lambda item: -item.bytes)


def remove_items(items: list[CacheItem]) -> int:
    """Remove what vaekit wrote of ``items`` (never ``kept`` ones; an entry or build another process
    holds is skipped with one line) and aliases left pointing nowhere; the bytes freed."""
    freed = 0
    for item in items:
        if item.kind == "kept":
            continue
        if item.kind == "alias":
            if _alias_target(item.path) is not None:  # checked again: what it points at now
                item.path.unlink(missing_ok=True)
        elif item.kind == "metadata":
            _remove_files(item.path, METADATA_FILES[item.path.name])
        elif not _remove_unless_busy(item.path):
            print(f"{item.path.name}: in use by a running process; left alone", file=sys.stderr)
            continue
        freed += item.bytes
    for folder in {item.path.parent for item in items}:
        for alias in folder.iterdir():
            dangling = ENTRY_NAME.fullmatch(alias.name) and alias.is_symlink() and not alias.exists()
            if dangling and _alias_target(alias, dangling=True) is not None:
                alias.unlink(missing_ok=True)
    return freed


def _alias_target(link: Path, dangling: bool = False) -> Path | None:
    """What a cache alias names: an entry of the same folder (a bare entry name), or None (not vaekit's)."""
    target = os.readlink(link)
    if "/" in target or not ENTRY_NAME.fullmatch(target) or target.endswith(".partial"):
        return None
    entry = link.parent / target
    return entry if dangling or (entry.is_dir() and (entry / "meta.json").is_file()) else None


def _remove_unless_busy(folder: Path) -> bool:
    """An entry or partial build's own files, under its lock; False when another process holds it."""
    lock = FileLock(folder.parent / f".{folder.name.lstrip('.').removesuffix('.partial')}.lock")
    if not lock.take():
        return False
    readers = FileLock(folder / "meta.json")  # a process reading the entry holds it shared
    try:
        if (folder / "meta.json").is_file() and not readers.take():
            lock.remove()  # (the build lock this check made: nothing builds here)
            return False
        readers.close()
        _remove_files(folder, ENTRY_FILES)
    finally:
        readers.close()
        if not folder.exists() or not (folder / "meta.json").is_file():
            lock.remove()  # the holder removes it: nothing is left for it to guard
        lock.close()
    return True


def _remove_files(folder: Path, own: re.Pattern) -> None:
    """The files of ``folder`` that ``own`` names, then the folder if nothing else is in it."""
    for path in folder.iterdir():
        if own.fullmatch(path.name):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() and not path.is_symlink() else path.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()


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
    return sum(_blocks(p) for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _blocks(path: Path) -> int:
    return path.stat().st_blocks * 512


def _newest(folder: Path) -> float:
    return max((p.stat().st_mtime for p in folder.rglob("*") if p.is_file()), default=folder.stat().st_mtime)
