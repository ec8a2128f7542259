"""The image files of a folder, listed without a ``stat`` of every file on every start.

``list_folder`` walks a folder with ``os.scandir`` (names and file types come from the directory
entries) and gives every image's path, size and modification time. The first walk stats each file
and keeps the result as a manifest in the cache (``manifests/<hash of the folder's path>.npz``);
later walks reuse it while every name and every directory's modification time are unchanged and a
random sample of files still has its recorded size and time. A start over a million files on a
network file system then reads directories, not a million inodes. A file rewritten in place under
its old name (which changes no directory) is seen when the sample draws it, or at once with
``rescan`` (``data.rescan: true``), which stats every file.
"""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from vaekit.data.cache import keep_arrays, kept_arrays

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
MANIFEST_FOLDER = "manifests"
SPOT_CHECKS = 64  # files re-stat'ed at each start that reuses a manifest


def is_image_name(name: str) -> bool:
    """An image by its suffix, leaving out macOS's ``._`` resource forks and ``__MACOSX`` folders."""
    path = PurePosixPath(name)
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("._") and "__MACOSX" not in path.parts


@dataclass(frozen=True)
class Listing:
    """Images under a folder: relative POSIX paths in a stable order, with sizes and mtimes (ns)."""

    members: tuple[str, ...]
    sizes: np.ndarray
    mtimes: np.ndarray

    def digest(self) -> str:
        """A hash of every name, size and modification time: what a cache key needs of the files
        (no folder path, no change times: a copy made with its times kept is the same data)."""
        digest = hashlib.sha256("\n".join(self.members).encode())
        digest.update(self.sizes.astype("<i8").tobytes())
        digest.update(self.mtimes.astype("<i8").tobytes())
        return digest.hexdigest()


def list_folder(root: Path, manifests: Path | None = None, *, rescan: bool = False) -> Listing:
    """Every image under ``root`` (recursive, symbolic links to files followed, to folders not),
    sorted by path components; ``manifests``: the folder that keeps manifests (None: none kept)."""
    members, folders = _walk(root)
    manifest = None
    if manifests is not None:
        manifest = manifests / MANIFEST_FOLDER / f"{hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:24]}.npz"
        kept = None if rescan else _read(manifest, members, folders)
        if kept is not None and _spot_check(root, kept):
            return kept
    stats = [(root / member).stat() for member in members]
    listing = Listing(
        members,
        np.array([s.st_size for s in stats], dtype=np.int64),
        np.array([s.st_mtime_ns for s in stats], dtype=np.int64),
    )
    if manifest is not None:
        _write(manifest, listing, folders)
    return listing


def _walk(root: Path) -> tuple[tuple[str, ...], dict[str, int]]:
    """Image members (sorted as ``Path`` objects sort: by components) and every folder's mtime."""
    members: list[str] = []
    folders: dict[str, int] = {}
    pending = [""]
    while pending:
        relative = pending.pop()
        folder = root / relative if relative else root
        folders[relative] = folder.stat().st_mtime_ns
        with os.scandir(folder) as entries:
            for entry in entries:
                name = f"{relative}/{entry.name}" if relative else entry.name
                if entry.is_dir(follow_symlinks=False):
                    pending.append(name)
                elif is_image_name(name) and entry.is_file():
                    members.append(name)
    members.sort(key=lambda member: member.split("/"))
    return tuple(members), dict(sorted(folders.items()))


def _read(path: Path, members: tuple[str, ...], folders: dict[str, int]) -> Listing | None:
    """The manifest at ``path`` if it lists exactly these members and folder times, else None."""
    saved = kept_arrays(path, "names", "folders", "folder_times", "sizes", "mtimes")
    if saved is None:  # none yet, or damaged: listed afresh
        return None
    names, folder_names = saved["names"].tobytes().decode(), saved["folders"].tobytes().decode()
    if names != "\n".join(members) or folder_names != "\n".join(folders) or len(saved["sizes"]) != len(members):
        return None
    if not np.array_equal(saved["folder_times"], np.fromiter(folders.values(), np.int64, len(folders))):
        return None
    return Listing(members, saved["sizes"], saved["mtimes"])


def _spot_check(root: Path, listing: Listing) -> bool:
    """A random sample of files still has the size and mtime the manifest recorded."""
    for i in random.sample(range(len(listing.members)), min(SPOT_CHECKS, len(listing.members))):
        try:
            stat = (root / listing.members[i]).stat()
        except OSError:
            return False
        if stat.st_size != listing.sizes[i] or stat.st_mtime_ns != listing.mtimes[i]:
            return False
    return True


def _write(path: Path, listing: Listing, folders: dict[str, int]) -> None:
    keep_arrays(
        path,
        names=np.frombuffer("\n".join(listing.members).encode(), np.uint8),
        folders=np.frombuffer("\n".join(folders).encode(), np.uint8),
        folder_times=np.fromiter(folders.values(), np.int64, len(folders)),
        sizes=listing.sizes,
        mtimes=listing.mtimes,
    )
