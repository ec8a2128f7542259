"""Data that is already in memory: numpy arrays, torch tensors, torch Datasets, Hugging Face datasets.

Everything becomes an ``ImageDataset``: images as uint8 ``(N, C, H, W)`` (float data in [0, 1] is
rounded to 8 bits, as an image file would be), or, for users' own networks, float32 vectors
``(N, D)``. ``fingerprint`` names the data (shape, dtype and a hash of the bytes) so that a run's
config records what it was trained on without storing it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from vaekit.data.dataset import ImageDataset
from vaekit.data.images import DataError
from vaekit.data.reader import upright
from vaekit.data.recipes import prepare, to_8bit

MEMORY_SOURCE = "memory"


def is_in_memory(data: Any) -> bool:
    """Whether ``data`` is an object (array, tensor, dataset) rather than a path or spec string."""
    return data is not None and not isinstance(data, str | Path)


def from_memory(data: Any, labels: Any = None, *, allow_vectors: bool = False) -> ImageDataset:
    """An ``ImageDataset`` from an array, tensor, ``torch.utils.data.Dataset`` or ``datasets.Dataset``.

    numpy arrays are ``(N, H, W)`` or ``(N, H, W, C)``; torch tensors ``(N, C, H, W)`` or
    ``(N, H, W)``; values uint8 or floats in [0, 1]. ``allow_vectors`` also accepts ``(N, D)``
    float data (for a model built with ``VAE.from_modules``). ``labels``: ``(N,)`` or ``(N, K)``.
    """
    data = _from_pictures(data)
    kind = _kind(data)
    if kind == "hf":
        images, found = _from_hf(data)
    elif kind == "torch-dataset":
        images, found = _from_torch_dataset(data)
    else:
        images, found = _array(data), None
        if kind == "numpy" and images.ndim == 4 and images.shape[-1] in (1, 3, 4) and images.shape[1] not in (1, 3):
            images = images.transpose(0, 3, 1, 2)
    labels = found if labels is None else _array(labels)
    dataset = ImageDataset(_normalise(images, allow_vectors), source=MEMORY_SOURCE)
    if labels is not None:
        if len(labels) != len(dataset):
            raise DataError(f"data: {len(labels)} labels for {len(dataset)} images")
        dataset.labels = labels
    return dataset


def shaped_for(dataset: ImageDataset, image_shape: tuple[int, ...], crop: str) -> ImageDataset:
    """In-memory images brought to a model's input ``image_shape`` by its own recipe (``crop``, then
    resize, then channels), exactly as image files are; images already of that shape are kept as they
    are. Vectors of another shape are refused with one line."""
    if tuple(dataset.image_shape) == tuple(image_shape):
        return dataset
    if len(image_shape) != 3 or dataset.images.ndim != 4:
        raise DataError(f"data: items of shape {dataset.image_shape}; this model takes {tuple(image_shape)}")
    from PIL import Image

    channels, size = image_shape[0], image_shape[-1]
    shaped = np.empty((len(dataset), channels, size, size), np.uint8)
    for i, image in enumerate(dataset.images):
        picture = Image.fromarray(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0))
        try:
            shaped[i] = prepare(picture, size, crop, channels)
        except ValueError as err:  # a crop recipe that needs a larger image
            raise DataError(f"data: image {i} ({image.shape[2]}x{image.shape[1]} px): {err}") from err
    return replace(dataset, images=shaped)


def fingerprint(dataset: ImageDataset) -> str:
    """``shape dtype sha256-prefix`` of the dataset's values (what a config records for memory data)."""
    images = np.ascontiguousarray(dataset.images)
    digest = hashlib.sha256(memoryview(images).cast("B")).hexdigest()[:16]
    return f"{'x'.join(map(str, images.shape))} {images.dtype} sha256:{digest}"


def _from_pictures(data: Any) -> Any:
    """PIL images (one, or a list of one size) as an ``(N, H, W, C)`` array; anything else as it is."""
    from PIL import Image

    pictures = [data] if isinstance(data, Image.Image) else data
    if not (isinstance(pictures, Sequence) and pictures and all(isinstance(p, Image.Image) for p in pictures)):
        return data
    sizes = {picture.size for picture in pictures}
    if len(sizes) > 1:
        raise DataError(f"data: PIL images of {len(sizes)} sizes; give them as files, or one size")
    gray = all(picture.mode in ("1", "L", "I", "I;16", "F") for picture in pictures)
    return np.stack([np.asarray(to_8bit(picture, 1 if gray else 3)) for picture in pictures])


def _kind(data: Any) -> str:
    module = type(data).__module__
    if module.startswith("datasets.") and hasattr(data, "features"):
        return "hf"
    if isinstance(data, np.ndarray):
        return "numpy"
    import torch

    if isinstance(data, torch.Tensor):
        return "torch"
    if isinstance(data, torch.utils.data.Dataset):
        return "torch-dataset"
    if isinstance(data, Sequence) and data and hasattr(data[0], "__array__"):
        return "numpy"
    raise DataError(
        f"data: cannot use a {type(data).__name__}; give a path, a numpy array, a torch tensor, "
        "a torch Dataset or a Hugging Face dataset"
    )


def _array(values: Any) -> np.ndarray:
    import torch

    if isinstance(values, torch.Tensor):
        if values.is_meta:
            raise DataError("data: a tensor on the meta device holds no values")
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if np.iscomplexobj(array):
        raise DataError(f"data: {array.dtype} values are complex numbers, not pixels")
    if array.dtype.kind not in "biuf":
        raise DataError(f"data: {array.dtype} values are not numbers")
    return array


def _filled(items: Iterable[np.ndarray], count: int, what: str) -> np.ndarray:
    """Items ``(C, H, W)`` of one shape as one uint8 array, each brought to 8 bits as it arrives:
    memory holds the result once, never a list of the items beside it (or a float copy of all);
    a DataError names the first item that differs."""
    out: np.ndarray | None = None
    for index, item in enumerate(items):
        image = _normalise(item[None], allow_vectors=False)[0]
        if out is None:
            out = np.empty((count, *image.shape), np.uint8)
        elif image.shape != out.shape[1:]:
            raise DataError(f"data: item {index} is {image.shape}, item 0 {out.shape[1:]}; give images of one size")
        out[index] = image
    if out is None:
        raise DataError(f"data: the {what} holds no items")
    return out


def _normalise(images: np.ndarray, allow_vectors: bool) -> np.ndarray:
    """uint8 ``(N, C, H, W)`` images, or float32 ``(N, D)`` vectors when allowed."""
    if len(images) == 0:
        raise DataError("data: the array holds no items")
    if images.ndim == 2:
        if not allow_vectors:
            raise DataError(
                f"data: a {images.shape} array is vectors, not images; vectors need your own networks "
                "(vaekit.VAE.from_modules)"
            )
        vectors = images.astype(np.float32)
        if not np.isfinite(vectors).all():
            raise DataError("data: the array holds NaN or infinite values")
        return vectors
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1] not in (1, 3, 4):
        raise DataError(
            f"data: expected images (N, H, W), (N, H, W, C) (numpy) or (N, C, H, W) (torch) with 1, 3 or 4 channels"
            " (a fourth, alpha, is dropped),"
            f" got shape {images.shape}"
        )
    if images.shape[1] == 4:
        images = images[:, :3]
    if images.dtype == np.uint8:
        return np.ascontiguousarray(images)
    if images.dtype == np.bool_:
        return images.astype(np.uint8) * 255
    if not np.issubdtype(images.dtype, np.number):
        raise DataError(f"data: images of dtype {images.dtype} are not numbers")
    values = images.astype(np.float32)
    if not np.isfinite(values).all():
        raise DataError("data: the images hold NaN or infinite values")
    low, high = float(values.min()), float(values.max())
    if low < 0 or high > 1:
        raise DataError(f"data: float images must lie in [0, 1] (these span {low:.3g} to {high:.3g}); or pass uint8")
    return np.rint(values * 255).astype(np.uint8)


def _from_torch_dataset(dataset: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Items are images or (image, label) pairs: tensors (C, H, W), arrays (H, W[, C]) or PIL images."""
    labels = []

    def images():
        for index in range(len(dataset)):
            item = dataset[index]
            if isinstance(item, tuple | list):
                item, label = item[0], item[1]
                labels.append(_array(label))
            yield _item_image(item, index)

    return _filled(images(), len(dataset), "dataset"), (np.stack(labels) if labels else None)


def _item_image(item: Any, index: int) -> np.ndarray:
    """One image item as ``(C, H, W)``: torch tensors are CHW, arrays and PIL images HW[C]."""
    import torch

    array = _array(item)
    if array.ndim not in (2, 3):
        raise DataError(f"data: item {index} is not an image (a {type(item).__name__} of shape {array.shape})")
    if array.ndim == 2:
        return array[None]
    return array if isinstance(item, torch.Tensor) else array.transpose(2, 0, 1)


def _from_hf(dataset: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """A ``datasets.Dataset`` with an Image column (and a ClassLabel / int column as labels)."""
    from datasets import ClassLabel, Image, Value

    features = dataset.features
    image_columns = [name for name, feature in features.items() if isinstance(feature, Image)]
    if not image_columns:
        raise DataError(f"data: the Hugging Face dataset has no Image column (columns: {', '.join(features)})")
    label_columns = [
        name
        for name, feature in features.items()
        if isinstance(feature, ClassLabel) or (isinstance(feature, Value) and feature.dtype.startswith("int"))
    ]
    column = image_columns[0]
    rows = (_pil_image(row[column], index) for index, row in enumerate(dataset.select_columns([column])))
    images = _filled(rows, len(dataset), "Hugging Face dataset")  # one decoded image at a time
    labels = np.asarray(dataset[label_columns[0]]) if label_columns else None
    return images, labels


def _pil_image(image: Any, index: int) -> np.ndarray:
    if image is None:
        raise DataError(f"data: row {index} of the Hugging Face dataset has no image")
    image = upright(image)  # the one reader's EXIF step, as for files
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    array = np.asarray(image)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
