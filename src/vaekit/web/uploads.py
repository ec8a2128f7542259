"""Checking uploaded images before any pixel is decoded: size, pixel count, format, integrity."""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from vaekit.config import DataConfig
from vaekit.data.recipes import prepare

MAX_UPLOAD_BYTES = 16 * 2**20
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")  # raster formats only: no EPS/PDF (Ghostscript)
MAX_PIXELS = 40_000_000  # well under Pillow's own decompression-bomb threshold


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
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)  # reads the header only
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise UploadError(413, f"the image has too many pixels ({err})") from err
    except UnidentifiedImageError as err:
        raise UploadError(
            415, "the upload is not an image this server reads (PNG, JPEG, WebP, BMP, GIF, TIFF)"
        ) from err
    with image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise UploadError(413, f"the image is {width}x{height} pixels; the limit is {MAX_PIXELS:,} pixels")
        try:
            image.load()
            upright = ImageOps.exif_transpose(image)
            array = prepare(upright, config.image_size, config.crop, config.channels or 3)
        except (OSError, SyntaxError, ValueError, EOFError) as err:
            raise UploadError(400, f"the image file is broken or truncated ({err})") from err
    return torch.from_numpy(np.ascontiguousarray(array)).float() / 255.0
