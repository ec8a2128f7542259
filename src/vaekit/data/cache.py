"""A content-keyed on-disk cache of decoded datasets, read back as memory maps.

A cache entry is a folder ``<cache_dir>/<kind>-<key>/`` holding ``images.npy`` (uint8, memory
mapped on load), optional ``labels.npy`` / ``partition.npy`` / ``names.bin`` (read when first
used) and ``meta.json``. The key hashes everything the result depends on (file names, sizes and
modification times, image size, crop recipe, channels, code version; never an absolute path or a
change time), so a change to any of them builds a new entry. Entries are built in a partial folder
by one process at a time (a file lock; the others wait) and renamed into place, so an interrupted
build leaves nothing, or, for the image folders' resumable build, its progress for the next start
to continue. ``meta.json`` records the size of every stored file, so a truncated or damaged entry
is found and rebuilt (with a warning) instead of failing every later run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
import warnings
import weakref
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from vaekit.data.dataset import ImageDataset, Names, RowView
from vaekit.io.files import write_atomically

NAMES_FILE = "names.bin"  # the images' names, NUL-separated, read when first used
CACHE_VERSION = 2  # 2: EXIF orientation applied; sizes of the stored arrays in meta.json


def default_cache_dir() -> Path:
    """``$VAEKIT_CACHE`` or ``~/.cache/vaekit`` (an empty variable is not the working folder)."""
    return Path(os.environ.get("VAEKIT_CACHE") or Path.home() / ".cache" / "vaekit")  # empty: unset


def cache_root(cache_dir: Path | str | None) -> Path:
    """The cache folder a ``data.cache_dir`` names (None: ``default_cache_dir()``)."""
    return Path(cache_dir) if cache_dir else default_cache_dir()


def cache_key(parts: dict[str, Any]) -> str:
    """A short stable hash of ``parts`` (JSON-serialisable)."""
    blob = json.dumps({"version": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


Builder = Callable[[Path], ImageDataset]
ENTRY_NAME = re.compile(r"\.?[a-z][a-z0-9_]*-[0-9a-f]{16}(\.partial)?")  # KIND-KEY, .KIND-KEY.partial
RESUMABLE_MARK = "resumable"  # in a partial folder whose builder continues what an interrupted build left
KEEP_INTERRUPTED = 7 * 24 * 3600  # seconds an interrupted resumable build waits for its key to come back


def cached_dataset(
    cache_dir: Path | str | None,
    kind: str,
    parts: dict[str, Any],
    build: Builder,
    resolved: Callable[[ImageDataset], dict[str, Any]] | None = None,
    *,
    resumable: bool = False,
) -> ImageDataset:
    """Load the entry for ``parts``, or run ``build(partial_folder)`` and store its result.

    ``build`` may allocate its image array as a memory map inside the folder (see
    ``allocate_images``) so that large datasets never need to fit in memory twice. One process
    builds an entry at a time (a file lock, so also across machines on shared storage): the others
    wait, saying so once, without a time limit, and then read it. An interrupted build is removed,
    unless ``resumable``: then its folder stays for the next build of the same key to continue (a
    resumable ``build`` finds its own progress there). ``resolved`` gives the parts that describe the
    result exactly where ``parts`` left a choice to the data (``channels: None`` that came out as 1
    or 3): the entry is found under those too, so a config that records the resolved value reads
    the same entry instead of decoding everything again.
    """
    root = cache_root(cache_dir)
    entry = root / f"{kind}-{cache_key(parts)}"
    found = _usable(entry)
    if found is not None:
        return _reading(found, entry)
    try:
        root.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(root)
        lock = FileLock(root / f".{entry.name}.lock")
    except OSError as err:
        raise CacheError(f"cannot write the dataset cache in {root} ({err.strerror or err}); set VAEKIT_CACHE") from err
    try:
        lock.take(wait_for=f"the dataset cache entry {entry}")
        found = _usable(entry)  # built by the process this one waited for
        if found is None:
            _build_entry(entry, parts, build, resumable)
            found = _read(entry)
    finally:
        lock.remove()
        lock.close()
    if resolved is not None:
        _link(entry, root / f"{kind}-{cache_key(resolved(found))}")
    return _reading(found, entry)


def _reading(dataset: ImageDataset, entry: Path) -> ImageDataset:
    """``dataset`` holding a shared lock on its entry for as long as its images are in use (the
    lock lives with their memory map), so that ``vaekit cache --clear`` leaves an entry being read."""
    lock = FileLock(entry.resolve() / "meta.json")  # a file of the entry: no lock file is left behind
    images = getattr(dataset.images, "base", None)
    if images is not None and lock.share():
        images.vaekit_reading = lock
    return dataset


def _usable(entry: Path) -> ImageDataset | None:
    """The entry's dataset if it is there and whole (its use recorded in meta.json's modification
    time, for ``vaekit cache --prune``); a damaged one is removed with a warning."""
    if not entry.is_dir():
        return None
    problem = _damage(entry)
    if problem is None:
        with contextlib.suppress(OSError):  # a read-only shared cache: no record
            os.utime(entry / "meta.json")
        return _read(entry)
    warnings.warn(f"cache entry {entry} is damaged ({problem}); rebuilding it", stacklevel=3)
    entry.unlink() if entry.is_symlink() else shutil.rmtree(entry, ignore_errors=True)
    return None


def _build_entry(entry: Path, parts: dict[str, Any], build: Builder, resumable: bool) -> None:
    """Build into ``.ENTRY.partial`` (held under the entry's lock) and rename it into place."""
    partial = entry.parent / f".{entry.name}.partial"
    if not resumable or not (partial / RESUMABLE_MARK).is_file():
        shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(exist_ok=True)
        if resumable:
            (partial / RESUMABLE_MARK).touch()
        with _terminate_cleanly():
            dataset = build(partial)
            _write(partial, dataset, parts)
        del dataset
        (partial / RESUMABLE_MARK).unlink(missing_ok=True)
        os.replace(partial, entry)
    except (KeyboardInterrupt, SystemExit):
        if not resumable:
            shutil.rmtree(partial, ignore_errors=True)
        raise
    except OSError as err:
        shutil.rmtree(partial, ignore_errors=True)
        if err.errno == errno.ENOSPC:
            raise CacheError(
                f"no space left on the device while caching the dataset in {entry.parent};"
                " free space or set VAEKIT_CACHE"
            ) from err
        raise
    except BaseException:  # a bad image, a bug, ...: nothing half-written stays behind
        shutil.rmtree(partial, ignore_errors=True)
        raise


_OPEN_LOCKS: weakref.WeakSet = weakref.WeakSet()  # this process's lock files, closed in forked children


def _drop_inherited_locks() -> None:
    """In a forked child: close its copies of the parent's lock files. An ``flock`` belongs to the
    open file, which a fork shares: a child that kept it (a decoding worker) would hold the entry's
    lock after its parent died, and the next start would wait for ever."""
    for lock in list(_OPEN_LOCKS):
        if lock.handle is not None:
            with contextlib.suppress(OSError):
                lock.handle.close()  # the child's descriptor only: the parent's keeps the lock
            lock.handle, lock.held = None, False


os.register_at_fork(after_in_child=_drop_inherited_locks)


class FileLock:
    """An exclusive ``flock`` on a lock file beside an entry, released when the process ends (also
    by SIGKILL); forked children do not keep it. The holder may delete the file (``remove``): a
    process that then gets the lock on the deleted file sees that the path no longer names it, and
    locks the path's new file instead."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: Any = None
        self.held = False
        _OPEN_LOCKS.add(self)

    def take(self, wait_for: str | None = None) -> bool:
        """Take the lock; busy: False at once, or with ``wait_for`` say (once) what is awaited and wait."""
        said = False
        while True:
            self.handle = open(self.path, "a+")  # noqa: SIM115 (held until close)
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if wait_for is None:
                    self.close()
                    return False
                if not said:
                    print(f"another process is building {wait_for}; waiting (no time limit)", file=sys.stderr)
                    said = True
                fcntl.flock(self.handle, fcntl.LOCK_EX)
            except OSError as err:  # a file system without locks (NFS mounted nolock): build unguarded
                if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    raise
                if wait_for is None:  # a probe of someone else's build: it may be running, leave it
                    self.close()
                    return False
                warnings.warn(
                    f"{self.path.parent} takes no file locks ({err.strerror}); two processes building the same"
                    " cache entry at once would both decode it",
                    stacklevel=3,
                )
                self.held = True
                return True
            with contextlib.suppress(FileNotFoundError):
                if os.fstat(self.handle.fileno()).st_ino == self.path.stat().st_ino:
                    self.held = True
                    return True
            self.close()  # the holder removed the file: lock the one the path names now

    def share(self) -> bool:
        """A shared hold (readers), at once or not at all: False while a process builds or removes it."""
        try:
            self.handle = open(self.path, "a+")  # noqa: SIM115 (held until close)
            fcntl.flock(self.handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:  # held exclusively, or a file system without locks: read without
            self.close()
            return False
        return True

    def remove(self) -> None:
        """Delete the lock file; only its holder does (another's would be lost under it)."""
        if self.held:
            self.path.unlink(missing_ok=True)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()  # releases the lock
            self.handle, self.held = None, False


def _remove_abandoned(root: Path) -> None:
    """Partial folders no process is building (a SIGKILL or an out-of-memory kill skips every
    clean-up): removed, or for a resumable build kept ``KEEP_INTERRUPTED`` seconds for a resume."""
    now = time.time()
    for partial in root.glob(".*.partial"):
        if not ENTRY_NAME.fullmatch(partial.name):  # not one of vaekit's
            continue
        lock = FileLock(root / f"{partial.name.removesuffix('.partial')}.lock")
        if not lock.take():
            continue
        try:
            stamps = [p.stat().st_mtime for p in partial.iterdir()] if partial.is_dir() else []
            if (partial / RESUMABLE_MARK).is_file() and now - max(stamps, default=0) < KEEP_INTERRUPTED:
                continue
            shutil.rmtree(partial, ignore_errors=True)
        finally:
            lock.remove()
            lock.close()


def _link(entry: Path, alias: Path) -> None:
    """``alias`` as a relative symbolic link to ``entry`` (kept if something is already there)."""
    if alias == entry or alias.exists() or alias.is_symlink():
        return
    with contextlib.suppress(OSError):  # another process linked it first, or no links here: a rebuild later
        alias.symlink_to(entry.name, target_is_directory=True)


@contextmanager
def _terminate_cleanly() -> Iterator[None]:
    """SIGTERM during a build raises (exit 143) instead of killing the process, so the partial
    folder is handled like after Ctrl-C."""
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
    if dataset.names is not None:
        Names.write(folder / NAMES_FILE, dataset.names)
    sizes = {p.name: p.stat().st_size for p in [*folder.glob("*.npy"), folder / NAMES_FILE] if p.is_file()}
    meta = {
        "label_names": dataset.label_names,
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

    mapped = np.load(entry / "images.npy", mmap_mode="r")
    names = Names(entry / NAMES_FILE, len(mapped)) if (entry / NAMES_FILE).is_file() else meta.get("names")
    return ImageDataset(
        images=RowView(mapped, np.arange(len(mapped))),  # rows read with pread: see dataset.take_rows
        labels=optional("labels.npy"),
        label_names=meta["label_names"],
        names=names,
        partition=optional("partition.npy"),
        source=meta["source"],
    )


# ---------------------------------------------------------------------- small arrays kept beside
def kept_arrays(path: Path, *names: str) -> dict[str, np.ndarray] | None:
    """The arrays ``names`` of a small ``.npz`` the cache keeps (a folder's listing, a shard's
    index), or None where it is missing or damaged: then it is made again."""
    try:
        with np.load(path, allow_pickle=False) as kept:
            return {name: kept[name] for name in names}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def keep_arrays(path: Path, **arrays: np.ndarray) -> None:
    """Store ``arrays`` as the ``.npz`` at ``path``, atomically; a cache that cannot be written
    keeps nothing (the arrays are made again next time)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, buffer.getvalue())


# ---------------------------------------------------------------------- what the cache holds
