"""A content-keyed on-disk cache of decoded datasets, read back as memory maps.

A cache entry is a folder ``<cache_dir>/<kind>-<key>/`` holding ``images.npy`` (uint8, memory
mapped on load), optional ``labels.npy`` / ``partition.npy`` and ``meta.json``. The key hashes
everything the result depends on (file names, sizes and modification times, image size, crop
recipe, channels, code version; never an absolute path or a change time), so a change to any of
them builds a new entry. Entries are written to a temporary folder and renamed into place, so an
interrupted build leaves nothing;
``meta.json`` records the size of every stored array, so a truncated or damaged entry is found and
rebuilt (with a warning) instead of failing every later run.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import signal
import socket
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from vaekit.data.dataset import ImageDataset
from vaekit.io.files import process_alive

CACHE_VERSION = 2  # 2: EXIF orientation applied; sizes of the stored arrays in meta.json


def default_cache_dir() -> Path:
    """``$VAEKIT_CACHE`` or ``~/.cache/vaekit``."""
    return Path(os.environ.get("VAEKIT_CACHE", Path.home() / ".cache" / "vaekit"))


def cache_root(cache_dir: Path | str | None) -> Path:
    """The cache folder a ``data.cache_dir`` names (None: ``default_cache_dir()``)."""
    return Path(cache_dir) if cache_dir else default_cache_dir()


def cache_key(parts: dict[str, Any]) -> str:
    """A short stable hash of ``parts`` (JSON-serialisable)."""
    blob = json.dumps({"version": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


Builder = Callable[[Path], ImageDataset]


def cached_dataset(
    cache_dir: Path | str | None,
    kind: str,
    parts: dict[str, Any],
    build: Builder,
    resolved: Callable[[ImageDataset], dict[str, Any]] | None = None,
) -> ImageDataset:
    """Load the entry for ``parts``, or run ``build(tmp_folder)`` and store its result.

    ``build`` may allocate its image array as a memory map inside ``tmp_folder`` (see
    ``allocate_images``) so that large datasets never need to fit in memory twice. ``resolved``
    gives the parts that describe the result exactly where ``parts`` left a choice to the data
    (``channels: None`` that came out as 1 or 3): the entry is found under those too, so a config
    that records the resolved value reads the same entry instead of decoding everything again.
    """
    root = cache_root(cache_dir)
    entry = root / f"{kind}-{cache_key(parts)}"
    if entry.is_dir():
        problem = _damage(entry)
        if problem is None:
            return _read(entry)
        warnings.warn(f"cache entry {entry} is damaged ({problem}); rebuilding it", stacklevel=2)
        entry.unlink() if entry.is_symlink() else shutil.rmtree(entry, ignore_errors=True)
    try:
        root.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(root)
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}@{socket.gethostname()}@{os.getpid()}@", dir=root))
    except OSError as err:
        raise CacheError(f"cannot write the dataset cache in {root} ({err.strerror or err}); set VAEKIT_CACHE") from err
    try:
        with _terminate_cleanly():
            dataset = build(tmp)
            _write(tmp, dataset, parts)
        del dataset
        try:
            os.replace(tmp, entry)
        except OSError:  # another process stored the same entry first
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if err.errno == errno.ENOSPC:
            raise CacheError(
                f"no space left on the device while caching the dataset in {root}; free space or set VAEKIT_CACHE"
            ) from err
        raise
    except BaseException:  # a signal, a bad image, ...: nothing half-written stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    dataset = _read(entry)
    if resolved is not None:
        _link(entry, root / f"{kind}-{cache_key(resolved(dataset))}")
    return dataset


def _remove_abandoned(root: Path) -> None:
    """Temporary folders of builds on this machine whose process is gone (a SIGKILL or an
    out-of-memory kill skips every clean-up): ``.ENTRY@HOST@PID@...``."""
    host = socket.gethostname()
    for path in root.glob(".*@*@*@*"):
        _, owner, pid, _ = path.name.split("@", 3)
        if owner == host and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _link(entry: Path, alias: Path) -> None:
    """``alias`` as a relative symbolic link to ``entry`` (kept if something is already there)."""
    if alias == entry or alias.exists() or alias.is_symlink():
        return
    with contextlib.suppress(OSError):  # another process linked it first, or no links here: a rebuild later
        alias.symlink_to(entry.name, target_is_directory=True)


@contextmanager
def _terminate_cleanly() -> Iterator[None]:
    """SIGTERM during a build raises (exit 143) instead of killing the process, so the temporary
    folder is removed like after Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(_signum, _frame):
        raise SystemExit(143)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class CacheError(OSError):
    """The dataset cache cannot be written; the message says where and what to do."""


def _damage(entry: Path) -> str | None:
    """Why a cache entry cannot be used as it is (missing or truncated files), or None."""
    try:
        meta = json.loads((entry / "meta.json").read_text())
        sizes = meta["sizes"]
    except (OSError, ValueError, KeyError, TypeError):
        return "unreadable meta.json"
    for name, size in sizes.items():
        path = entry / name
        if not path.is_file() or path.stat().st_size != size:
            return f"{name} is {path.stat().st_size if path.is_file() else 'missing'}, expected {size} bytes"
    return None


def allocate_images(folder: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A writable uint8 memory map ``folder/images.npy`` of ``shape``, its disk space reserved up
    front (a full disk is then an ``ENOSPC`` error here, not a crash while writing the map)."""
    images = np.lib.format.open_memmap(folder / "images.npy", mode="w+", dtype=np.uint8, shape=shape)
    if hasattr(os, "posix_fallocate"):
        with open(folder / "images.npy", "r+b") as handle:
            os.posix_fallocate(handle.fileno(), 0, os.fstat(handle.fileno()).st_size)
    return images


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
    sizes = {p.name: p.stat().st_size for p in folder.glob("*.npy")}
    meta = {
        "label_names": dataset.label_names,
        "names": dataset.names,
        "source": dataset.source,
        "key": parts,
        "sizes": sizes,
    }
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
