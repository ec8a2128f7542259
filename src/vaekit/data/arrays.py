"""``.npy`` and ``.npz`` files as data: the arrays a notebook saved, read without pickles.

A ``.npy`` holds the images; a ``.npz`` holds them under ``images`` / ``x`` / ``x_train`` / ``data``
(or its only array) and, optionally, class labels or attributes under ``labels`` / ``y`` /
``y_train`` / ``targets``. Layouts as ``vaekit.train(data=array)`` takes them: ``(N, H, W)``,
``(N, H, W, C)`` or ``(N, C, H, W)``, uint8 or floats in [0, 1]. Each array's size is read from its
header and held against the request budget before anything is allocated.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from vaekit.data.dataset import ImageDataset
from vaekit.data.images import DataError
from vaekit.data.memory import from_memory, shaped_for
from vaekit.data.registry import DATA_SOURCES, Source
from vaekit.limits import require_within_budget
from vaekit.schema import ConfigError

SUFFIXES = (".npy", ".npz")
IMAGE_KEYS = ("images", "x", "x_train", "data")
LABEL_KEYS = ("labels", "y", "y_train", "targets")


def read_arrays(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(images, labels or None) from a ``.npy`` (memory-mapped) or ``.npz`` file; never unpickles."""
    try:
        if path.suffix.lower() == ".npy":
            _require_fits(path.name, *_npy_header(path))
            return np.load(path, mmap_mode="r", allow_pickle=False), None
        with zipfile.ZipFile(path) as archive:
            headers = {
                name.removesuffix(".npy"): _npz_header(archive, name)
                for name in archive.namelist()
                if name.endswith(".npy")
            }
        image_key = _pick(headers, IMAGE_KEYS, path, "images")
        label_key = next((key for key in LABEL_KEYS if key in headers and key != image_key), None)
        for key in filter(None, (image_key, label_key)):
            _require_fits(f"{path.name}[{key}]", *headers[key])
        with np.load(path, allow_pickle=False) as arrays:
            labels = _whole_labels(arrays[label_key], f"{path}[{label_key}]") if label_key else None
            return arrays[image_key], labels
    except (ConfigError, DataError):  # over the request budget, or labels that are not labels: said as they are
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"{path}: not a readable numpy array file ({err})") from None


def _whole_labels(labels: np.ndarray, where: str) -> np.ndarray:
    """Labels that are whole numbers (as int64 when they were floats), or one ``DataError`` naming them."""
    if labels.dtype.kind in "biu":
        return labels
    if labels.dtype.kind != "f":
        raise DataError(f"{where}: labels are whole numbers, got {labels.dtype}")
    bad = ~np.isfinite(labels) | (labels != np.round(labels)) | (np.abs(labels) > 2**53)
    if bad.any():
        raise DataError(f"{where}: labels are whole numbers; found {float(labels[bad].flat[0])!r}")
    return labels.astype(np.int64)


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    with open(path, "rb") as handle:
        return _read_header(handle)


def _npz_header(archive: zipfile.ZipFile, name: str) -> tuple[tuple[int, ...], np.dtype]:
    with archive.open(name) as handle:
        return _read_header(handle)


def _read_header(handle) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(handle)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(handle)
    if dtype.hasobject:
        raise ValueError("it holds Python objects (pickles), which vaekit never loads")
    return shape, dtype


def _require_fits(what: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    if shape:
        require_within_budget(what, shape[0], shape[1:], dtype.itemsize)


def _pick(headers: dict, keys: tuple[str, ...], path: Path, what: str) -> str:
    found = next((key for key in keys if key in headers), None)
    if found is None and len(headers) == 1:
        found = next(iter(headers))
    if found is None:
        raise DataError(f"{path}: no {what} array; name it one of {', '.join(keys)} (it holds {sorted(headers)})")
    return found


def _load(path: Path | None, config) -> ImageDataset:
    assert path is not None  # a path source
    images, labels = read_arrays(path)
    dataset = from_memory(images, labels)
    channels = config.channels or dataset.image_shape[0]
    dataset = shaped_for(dataset, (channels, config.image_size, config.image_size), config.crop)
    dataset.source = str(path)
    return dataset


DATA_SOURCES.add(
    "array",
    Source(_load, detect=lambda path: path.is_file() and path.suffix.lower() in SUFFIXES),
    summary=".npy images, or a .npz of images (images/x) and optional labels (labels/y); no pickles",
    capabilities={"path"},
)
