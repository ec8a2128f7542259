"""Uploaded images: the byte limit, then the one image reader (format, pixel count, integrity)."""

from __future__ import annotations

import numpy as np
import torch

from vaekit.config import DataConfig
from vaekit.data.reader import UnreadableImage, read_image
from vaekit.data.recipes import prepare

MAX_UPLOAD_BYTES = 16 * 2**20


class UploadError(ValueError):
    """An upload we refuse, with the HTTP status and a message for the person who sent it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def read_upload(data: bytes, config: DataConfig) -> torch.Tensor:
    """An uploaded file as a ``(C, H, W)`` image in [0, 1], prepared like the model's training data.

    Raises ``UploadError``: 400 empty or broken, 413 too many bytes or pixels, 415 not an image.
    """
    if not data:
        raise UploadError(400, "the upload is empty: choose an image file (PNG, JPEG, WebP, BMP, GIF)")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(
            413, f"the upload is {len(data) / 2**20:.1f} MiB; the limit is {MAX_UPLOAD_BYTES // 2**20} MiB"
        )
    try:
        image = read_image(data)
    except UnreadableImage as err:
        status = {"pixels": 413, "format": 415}.get(err.reason, 400)
        raise UploadError(status, f"the upload is {err}") from err
    try:
        array = prepare(image, config.image_size, config.crop, config.channels or 3)
    except (OSError, ValueError) as err:
        raise UploadError(400, f"the image file is broken or truncated ({err})") from err
    return torch.from_numpy(np.array(array)).float() / 255.0  # a copy: the decoded array may be read-only
