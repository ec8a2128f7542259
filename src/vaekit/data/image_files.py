"""Users' own image files as a model's input: read once (EXIF orientation applied), shaped by the
run's recipe, or one clear error naming the file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vaekit.config import Config
from vaekit.data.images import DataError
from vaekit.data.reader import UnreadableImage, read_image
from vaekit.data.recipes import prepare, to_8bit


def _read_image(path: str | Path, convert) -> np.ndarray:
    """``convert(upright image)`` of an image file (EXIF orientation applied), or one clear error."""
    try:
        return convert(read_image(Path(path)))
    except UnreadableImage as err:
        raise DataError(f"{path}: cannot read image ({err})") from err
    except OSError as err:  # a missing or unreadable file
        raise DataError(f"{path}: cannot read image ({err.strerror or err})") from err


def load_images(paths: Sequence[str | Path], config: Config) -> torch.Tensor:
    """User images as a ``(N, C, H, W)`` batch in [0, 1], shaped like the model's training data
    (EXIF orientation applied, cropped and resized by the data's recipe)."""
    data = config.data

    def shaped(image: Image.Image) -> np.ndarray:
        return prepare(image, data.image_size, data.crop, data.channels or 3)

    return (
        torch.from_numpy(np.ascontiguousarray(np.stack([_read_image(path, shaped) for path in paths]))).float() / 255.0
    )


def load_full_size(path: str | Path, config: Config) -> torch.Tensor:
    """One image file at its own resolution as ``(C, H, W)`` in [0, 1] (EXIF applied, no crop)."""
    array = _read_image(path, lambda image: np.asarray(to_8bit(image, config.data.channels or 3)))
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array)).float() / 255.0
