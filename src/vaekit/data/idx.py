"""MNIST-format IDX files (``*-idx3-ubyte[.gz]``), and fetching MNIST itself when online."""

from __future__ import annotations

import gzip
import hashlib
import math
import struct
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from vaekit.data.cache import cache_root, cached_dataset
from vaekit.data.dataset import TEST, TRAIN, ImageDataset
from vaekit.data.images import DataError
from vaekit.data.recipes import prepare
from vaekit.data.registry import DATA_SOURCES, Source

MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://yann.lecun.com/exdb/mnist/")
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MAX_IDX_BYTES = 16 << 30  # the data one IDX file may declare (MNIST's training images: 47 MB)
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path | str) -> np.ndarray:
    """Parse one IDX file (optionally gzipped) into a numpy array: the header is read first, then
    exactly the bytes it declares (at most ``MAX_IDX_BYTES``), so a gzip bomb is never inflated."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _DTYPES or not 1 <= head[3] <= 4:
                raise DataError(f"{path}: not an IDX file (bad magic number)")
            dims = handle.read(4 * head[3])
            if len(dims) != 4 * head[3]:
                raise DataError(f"{path}: not an IDX file (truncated header)")
            shape = struct.unpack(f">{head[3]}I", dims)
            dtype = np.dtype(_DTYPES[head[2]])
            expected = math.prod(shape) * dtype.itemsize
            if expected > MAX_IDX_BYTES:
                raise DataError(f"{path}: declares {expected:,} bytes of data; the limit is {MAX_IDX_BYTES:,}")
            body = handle.read(expected + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: cannot read IDX file ({err})") from err
    if len(body) < expected:
        raise DataError(f"{path}: truncated IDX file ({len(body)} of {expected} data bytes)")
    if len(body) > expected:
        raise DataError(f"{path}: holds more data than its header declares ({expected} bytes); not read further")
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def idx_shape(path: Path | str) -> tuple[int, ...]:
    """The array shape an IDX file declares, from its header alone."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in _DTYPES or not 1 <= head[3] <= 4:
                raise DataError(f"{path}: not an IDX file (bad magic number)")
            dims = handle.read(4 * head[3])
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read IDX file ({err})") from err
    if len(dims) != 4 * head[3]:
        raise DataError(f"{path}: not an IDX file (truncated header)")
    return struct.unpack(f">{head[3]}I", dims)


def find_idx(folder: Path, prefix: str, kind: str) -> Path | None:
    """``folder/<prefix>-<kind>-ubyte[.gz]`` (also the ``prefix-kind.idx3-ubyte`` spelling)."""
    for pattern in (f"{prefix}-{kind}-ubyte.gz", f"{prefix}-{kind}-ubyte", f"{prefix}-{kind.replace('-', '.')}-ubyte"):
        hits = sorted(folder.glob(pattern))
        if hits:
            return hits[0]
    return None


def is_idx_folder(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*idx3-ubyte*"))


def download_mnist(folder: Path, mirrors: tuple[str, ...] = MNIST_MIRRORS) -> None:
    """Fetch the four MNIST files into ``folder``, each checked against its md5."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, md5 in MNIST_FILES.items():
        target = folder / name
        if target.is_file() and _md5(target.read_bytes()) == md5:
            continue
        errors = []
        for mirror in mirrors:
            try:
                with urllib.request.urlopen(mirror + name, timeout=30) as response:
                    payload = response.read()
            except (urllib.error.URLError, OSError) as err:
                errors.append(f"{mirror}{name}: {err}")
                continue
            if _md5(payload) != md5:
                errors.append(f"{mirror}{name}: md5 mismatch")
                continue
            tmp = target.with_suffix(".part")
            tmp.write_bytes(payload)
            tmp.replace(target)
            break
        else:
            raise DataError(
                f"MNIST is not in {folder} and could not be downloaded:\n  "
                + "\n  ".join(errors)
                + f"\nPut the four files ({', '.join(MNIST_FILES)}) in {folder}, or give --data PATH."
            )


def _md5(payload: bytes) -> str:
    return hashlib.md5(payload).hexdigest()


def load_idx_folder(
    folder: Path, *, image_size: int, crop: str, channels: int | None, cache_dir: str | None, download: bool = False
) -> ImageDataset:
    """An IDX folder: ``train-*`` and ``t10k-*`` images (with labels when present) and their split."""
    if download and find_idx(folder, "train", "images-idx3") is None:
        download_mnist(folder)
    found = {
        (prefix, kind): find_idx(folder, prefix, kind)
        for prefix in ("train", "t10k")
        for kind in ("images-idx3", "labels-idx1")
    }
    if found["train", "images-idx3"] is None:
        raise DataError(f"{folder}: no train-images-idx3-ubyte[.gz] file")
    files = {key: path for key, path in found.items() if path is not None}
    # names, sizes and times, not where the folder is: moved or mounted elsewhere, it keeps its cache
    fingerprint = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files.values())
    parts = {"files": fingerprint, "size": image_size, "crop": crop, "channels": channels}

    def build(_: Path) -> ImageDataset:
        images, labels, partition = [], [], []
        for prefix, part in (("train", TRAIN), ("t10k", TEST)):
            path = files.get((prefix, "images-idx3"))
            if path is None:
                continue
            array = read_idx(path)
            if array.ndim != 3:
                raise DataError(f"{path}: expected (N, H, W) images, got shape {array.shape}")
            images.append(_resize(as_pixels(array, path), image_size, crop, channels or 1))
            partition.append(np.full(len(array), part, dtype=np.uint8))
            label_path = files.get((prefix, "labels-idx1"))
            found = read_idx(label_path).astype(np.int64) if label_path else None
            if found is not None and (found.ndim != 1 or len(found) != len(array)):
                raise DataError(f"{label_path}: {found.shape[0] if found.ndim else 0} labels for {len(array)} images")
            labels.append(found)
        has_labels = all(item is not None for item in labels)
        return ImageDataset(
            images=np.concatenate(images),
            labels=np.concatenate(labels) if has_labels else None,
            partition=np.concatenate(partition) if len(partition) > 1 else None,
            source=str(folder),
        )

    return cached_dataset(cache_dir, "idx", parts, build)


def as_pixels(array: np.ndarray, path: Path) -> np.ndarray:
    """IDX images as uint8: integers within 0..255 as they are, floats in [0, 1] scaled; NaN, inf
    or anything outside those ranges is refused, never cast (a cast wraps or zeroes it)."""
    if array.dtype == np.uint8:
        return array
    values = array.astype(np.float64)
    if not np.isfinite(values).all():
        raise DataError(f"{path}: the images hold NaN or infinite values")
    low, high = float(values.min()), float(values.max())
    if np.issubdtype(array.dtype, np.floating) and low >= 0 and high <= 1:
        return np.rint(values * 255).astype(np.uint8)
    if low < 0 or high > 255 or (np.issubdtype(array.dtype, np.floating) and not (values == np.rint(values)).all()):
        raise DataError(
            f"{path}: {array.dtype} pixels from {low:g} to {high:g}; IDX images must be 0..255 (or floats in [0, 1])"
        )
    return values.astype(np.uint8)


def _resize(array: np.ndarray, size: int, crop: str, channels: int) -> np.ndarray:
    if array.shape[1:] == (size, size):
        images = array[:, None]
        return np.repeat(images, 3, axis=1) if channels == 3 else images
    return np.stack([prepare(Image.fromarray(img, "L"), size, crop, channels) for img in array])


def _load(path: Path | None, config, *, download: bool = False) -> ImageDataset:
    return load_idx_folder(
        path, image_size=config.image_size, crop=config.crop, channels=config.channels,
        cache_dir=config.cache_dir, download=download,
    )  # fmt: skip


def _load_mnist(path: Path | None, config) -> ImageDataset:
    return _load(path or cache_root(config.cache_dir) / "mnist", config, download=True)


DATA_SOURCES.add(
    "idx",
    Source(_load, detect=is_idx_folder),
    summary="a folder of IDX files (MNIST's format: train-* and t10k-* images and labels)",
    capabilities={"path"},
)
DATA_SOURCES.add(
    "mnist",
    Source(_load_mnist),
    summary="MNIST in the cache folder (or mnist:PATH), downloaded and md5-checked when missing",
    capabilities={"path", "no-path"},
)
