"""The one image reader: every image vaekit decodes (training data, CLI and API inputs, explorer
uploads, its own grids) is opened here. Raster formats only (a PostScript or PDF file named .png
never reaches Ghostscript), the pixel count checked from the header before any pixel is decoded,
EXIF orientation applied."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

RASTER_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
MAX_PIXELS = 64_000_000  # 8000 x 8000; Pillow's own bomb threshold is higher


class UnreadableImage(ValueError):
    """An image vaekit will not decode; ``reason`` is ``format``, ``pixels`` or ``broken``."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def open_image(source: Path | str | bytes | BinaryIO) -> Image.Image:
    """A lazily decoded Pillow image of a raster format with at most ``MAX_PIXELS`` pixels."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(stream, formats=RASTER_FORMATS)  # reads the header only
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise UnreadableImage(f"too many pixels ({err})", "pixels") from err
    except UnidentifiedImageError as err:
        raise UnreadableImage(f"not an image in a format vaekit reads ({', '.join(RASTER_FORMATS)})", "format") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise UnreadableImage(f"broken or truncated ({err})", "broken") from err
    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        raise UnreadableImage(f"{width}x{height} pixels; the limit is {MAX_PIXELS:,}", "pixels")
    return image


DRAFT_RECIPES = ("center", "none", "random")  # crops that scale with the image: a JPEG may decode smaller


def upright(image: Image.Image, at_least: int | None = None) -> Image.Image:
    """An opened image decoded and turned upright (EXIF orientation), or ``UnreadableImage``.
    ``at_least``: a JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8) whose sides stay at
    least that many pixels (Pillow's draft mode: a large photo for a small model decodes several
    times faster); only for crops that scale with the image (``DRAFT_RECIPES``)."""
    try:
        if at_least and image.format == "JPEG":
            image.draft(image.mode, (at_least, at_least))
        image.load()
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as err:
        raise UnreadableImage(f"broken or truncated ({err})", "broken") from err


def read_image(source: Path | str | bytes | BinaryIO) -> Image.Image:
    """The decoded, upright image of a file or bytes, or ``UnreadableImage`` saying why."""
    with open_image(source) as image:
        return upright(image)
