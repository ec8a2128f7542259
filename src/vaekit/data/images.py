"""Image folders and zip archives: list, decode in parallel, crop, store in the uint8 cache."""

from __future__ import annotations

import hashlib
import json
import threading
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vaekit.data.build import FAILED, GRAY, compact, decode_files
from vaekit.data.cache import cache_root, cached_dataset
from vaekit.data.dataset import ImageDataset
from vaekit.data.listing import IMAGE_SUFFIXES, is_image_name, list_folder
from vaekit.data.reader import open_image
from vaekit.data.recipes import RANDOM
from vaekit.data.registry import DATA_SOURCES, Source, decode_options
from vaekit.schema import FileRefused, read_bounded

MAX_MEMBER_BYTES = 256 << 20  # an image inside a zip larger than this uncompressed is skipped
MAX_ARCHIVE_BYTES = 1 << 40  # all members together (from the headers)
MAX_TEXT_BYTES = 256 << 20  # a labels / attributes / split file (CelebA's attributes: 26 MB)


class DataError(ValueError):
    """A data source cannot be used; the message says what and where."""


def read_text(path: Path) -> str:
    """A UTF-8 text file (labels, attributes, splits) of at most ``MAX_TEXT_BYTES``, or a
    ``DataError`` naming it."""
    try:
        return read_bounded(path, MAX_TEXT_BYTES).decode("utf-8-sig")
    except FileRefused as err:
        raise DataError(str(err)) from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not a text (UTF-8) file ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read it ({err.strerror or err})") from None


@dataclass(frozen=True)
class ImageFiles:
    """The image files of a folder or of a zip archive, in a stable (sorted) order."""

    root: Path
    members: tuple[str, ...]  # paths relative to the folder, or zip member names
    fingerprint: tuple  # what the cache key depends on

    @property
    def is_zip(self) -> bool:
        return self.root.is_file()

    @classmethod
    def scan(cls, root: Path | str, manifests: Path | None = None, *, rescan: bool = False) -> ImageFiles:
        """All images under a folder (recursive), inside a ``.zip``, or inside a folder's only ``.zip``;
        ``manifests``: where a folder's listing is kept between starts (see ``data/listing.py``)."""
        root = Path(root)
        if root.is_file() and zipfile.is_zipfile(root):
            infos = _zip_members(root)
            members = tuple(i.filename for i in infos)
            stat = root.stat()
            # no path: the archive moved or mounted elsewhere is the same data (its size, time and CRCs)
            fingerprint = ("zip", stat.st_size, stat.st_mtime_ns, _digest((i.filename, i.CRC) for i in infos))
        elif root.is_dir():
            listing = list_folder(root, manifests, rescan=rescan)
            archives = sorted(root.glob("*.zip"))
            if not listing.members and len(archives) == 1:  # a folder that ships its images as one zip
                return cls.scan(archives[0])
            members = listing.members
            # names, sizes and mtimes, no folder path and no change times: the folder moved, mounted
            # elsewhere or copied with its times kept (a per-node copy) keeps its cache
            fingerprint = ("folder", len(members), listing.digest())
        else:
            raise DataError(f"{root}: not an image folder or a zip archive")
        if not members:
            raise DataError(f"no images found in {root} (looked recursively for {', '.join(sorted(IMAGE_SUFFIXES))})")
        return cls(root, members, fingerprint)

    def first(self, count: int | None) -> ImageFiles:
        """The first ``count`` members (all for None), keyed as such in the cache."""
        if count is None or count >= len(self.members):
            return self
        return ImageFiles(self.root, self.members[:count], (*self.fingerprint, "first", count))

    def opener(self) -> Callable[[str], Image.Image]:
        """A thread-safe function that opens a member as a (lazy) Pillow image."""
        if not self.is_zip:
            return lambda member: open_image(self.root / member)
        local = threading.local()

        def open_member(member: str) -> Image.Image:
            if not hasattr(local, "archive"):
                local.archive = zipfile.ZipFile(self.root)
            return open_image(read_member(local.archive, member))

        return open_member


def _digest(items) -> str:
    """A short hash of many items (so that a cache entry's meta.json stays small at a million files)."""
    return hashlib.sha256(json.dumps(list(items)).encode()).hexdigest()


def _zip_members(archive_path: Path) -> list[zipfile.ZipInfo]:
    """The image members of a zip, sorted; duplicates, encrypted or oversized members are left out
    with one warning; a damaged directory is a ``DataError`` naming the archive."""
    try:
        with zipfile.ZipFile(archive_path) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir() and is_image_name(i.filename)]
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise DataError(f"{archive_path}: not a readable zip archive ({err})") from err
    skipped, seen, kept = [], set(), []
    for info in sorted(infos, key=lambda i: i.filename):
        if info.filename in seen:
            skipped.append(f"{info.filename} (a second member of the same name)")
        elif info.flag_bits & 0x1:
            skipped.append(f"{info.filename} (encrypted)")
        elif info.file_size > MAX_MEMBER_BYTES:
            skipped.append(f"{info.filename} ({info.file_size} bytes uncompressed, over {MAX_MEMBER_BYTES})")
        else:
            kept.append(info)
        seen.add(info.filename)
    if sum(i.file_size for i in kept) > MAX_ARCHIVE_BYTES:
        raise DataError(f"{archive_path}: its members claim more than {MAX_ARCHIVE_BYTES} bytes uncompressed")
    if skipped:
        shown = "\n  ".join(skipped[:20])
        warnings.warn(f"skipped {len(skipped)} member(s) of {archive_path}:\n  {shown}", stacklevel=3)
    return kept


def read_member(archive: zipfile.ZipFile, member: str) -> bytes:
    """A member's bytes, read in chunks and abandoned as soon as it grows past ``MAX_MEMBER_BYTES``
    (a header can lie about the size; memory stays bounded)."""
    chunks, total = [], 0
    with archive.open(member) as stream:
        while chunk := stream.read(1 << 20):
            total += len(chunk)
            if total > MAX_MEMBER_BYTES:
                raise ValueError(f"more than {MAX_MEMBER_BYTES} bytes uncompressed; skipped")
            chunks.append(chunk)
    return b"".join(chunks)


def load_image_files(
    files: ImageFiles,
    *,
    image_size: int,
    crop: str,
    channels: int | None,
    cache_dir: str | None,
    workers: int = 0,
    kind: str = "images",
) -> ImageDataset:
    """Decode ``files`` once into the cache (skipping unreadable ones) and return the dataset."""
    if crop == RANDOM:
        raise DataError(
            f"data.crop random draws a new crop every epoch, which a cache decoded once cannot hold; "
            f"convert the images to tar shards (vaekit shard {files.root} -o SHARDS) and train with --data SHARDS"
        )
    # decoder 2: JPEGs in draft mode for scaling crops (older entries decoded them at full size)
    parts = {"files": files.fingerprint, "size": image_size, "crop": crop, "channels": channels, "decoder": 2}

    def build(folder: Path) -> ImageDataset:
        return _decode_all(files, folder, image_size, crop, channels, workers)

    def resolved(dataset: ImageDataset) -> dict:  # channels chosen from the data: found under that value too
        return {**parts, "channels": dataset.image_shape[0]}

    dataset = cached_dataset(cache_dir, kind, parts, build, resolved if channels is None else None, resumable=True)
    dataset.source = str(files.root)  # where it is now, whichever path built the entry
    return dataset


def _decode_all(
    files: ImageFiles, folder: Path, size: int, crop: str, channels: int | None, workers: int
) -> ImageDataset:
    decoded = decode_files(files, folder, size, crop, channels or 3, workers)
    if decoded.failures:
        shown = "\n  ".join(sorted(decoded.failures)[:20])
        more = f"\n  ... and {len(decoded.failures) - 20} more" if len(decoded.failures) > 20 else ""
        count = len(decoded.failures)
        warnings.warn(f"skipped {count} unreadable image(s) in {files.root}:\n  {shown}{more}", stacklevel=2)
    kept = np.flatnonzero(decoded.status != FAILED)
    if not len(kept):
        raise DataError(f"none of the {len(files.members)} image files in {files.root} could be decoded")
    gray = channels is None and bool((decoded.status[kept] == GRAY).all())
    images = compact(folder, decoded, gray)
    for leftover in ("status.npy", "failures.txt"):
        (folder / leftover).unlink(missing_ok=True)
    return ImageDataset(images=images, names=[files.members[i] for i in kept], source=str(files.root))


def _load(path: Path | None, config) -> ImageDataset:
    files = ImageFiles.scan(path, cache_root(config.cache_dir), rescan=config.rescan).first(config.limit)
    return load_image_files(files, **decode_options(config))


DATA_SOURCES.add(
    "images",
    Source(_load),
    summary="a folder (searched recursively) or a .zip of PNG, JPEG, WebP, BMP, GIF or TIFF images",
    capabilities={"path"},
)
