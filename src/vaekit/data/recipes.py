"""Named crop-and-resize recipes and conversion of any Pillow image to uint8 RGB or gray."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from vaekit.registry import Registry

Box = tuple[int, int, int, int]  # left, top, right, bottom


def _center_square(width: int, height: int) -> Box:
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def _center(side: int) -> Callable[[int, int], Box]:
    def box(width: int, height: int) -> Box:
        left, top = (width - side) // 2, (height - side) // 2
        return left, top, left + side, top + side

    return box


def _rows(margin: int) -> Callable[[int, int], Box]:
    return lambda width, height: (0, margin, width, height - margin)


def _fixed(side: int, top: int, left: int) -> Callable[[int, int], Box]:
    return lambda width, height: (left, top, left + side, top + side)


# A crop is ``box(width, height) -> (left, top, right, bottom)``, or None to resize the whole image
CROPS: Registry = Registry("crop", "data.crop")
CROPS.add("none", None, summary="resize the whole image (aspect ratio not kept)")
CROPS.add("center", _center_square, summary="the largest centred square")
CROPS.add("celeba-center140", _center(140), summary="the centre 140x140 of CelebA's 178x218 aligned faces")
CROPS.add("celeba-rows20", _rows(20), summary="rows 20:-20 (178x178 from 178x218)")
CROPS.add("celeba-crop160", _fixed(160, top=29, left=9), summary="160x160 at (y=29, x=9), the Spatial-Z recipe")
CROPS.add(
    "random",
    _center_square,
    summary="training: the short side to the size, a random square each epoch (LDM); else centred",
)
RANDOM = "random"  # the recipe drawn anew each epoch: only for data decoded while training

_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def is_gray(image: Image.Image) -> bool:
    """Whether a decoded image carries a single intensity channel."""
    return image.mode in _GRAY_MODES


def to_8bit(image: Image.Image, channels: int) -> Image.Image:
    """Convert any mode (16-bit, float, palette, alpha, CMYK) to 8-bit ``L`` or ``RGB``.

    16-bit and float images are scaled to 0..255 rather than clipped; transparent pixels are
    composited over white.
    """
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 1.0 if image.mode == "F" and values.max() <= 1.0 else (255.0 if values.max() <= 255 else 65535.0)
        image = Image.fromarray(np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("L" if channels == 1 else "RGB")


def random_square(image: Image.Image, size: int, rng: np.random.Generator) -> Image.Image:
    """The short side scaled to ``size`` (never up: a small image keeps its pixels), then a
    ``size`` x ``size`` square at a random place (taming / latent diffusion's SmallestMaxSize +
    RandomCrop)."""
    scale = size / min(image.size)
    if scale < 1:
        shape = (max(size, round(image.width * scale)), max(size, round(image.height * scale)))
        image = image.resize(shape, Image.Resampling.LANCZOS)
    side = min(image.size)
    left = int(rng.integers(0, image.width - side + 1))
    top = int(rng.integers(0, image.height - side + 1))
    return image.crop((left, top, left + side, top + side))


def apply_recipe(image: Image.Image, size: int, recipe: str, rng: np.random.Generator | None = None) -> Image.Image:
    """Crop ``image`` by the named recipe, then resize to ``size`` x ``size`` (``rng``: the draw of
    a random recipe; without it the random recipe is the centred one)."""
    if recipe not in CROPS:
        raise ValueError(f"unknown crop recipe {recipe!r}; choose one of {', '.join(CROPS.names())}")
    if recipe == RANDOM and rng is not None:
        image = random_square(image, size, rng)
    box_of = CROPS.get(recipe).factory
    if box_of is not None:
        box = box_of(*image.size)
        left, top, right, bottom = box
        if left < 0 or top < 0 or right > image.width or bottom > image.height or right <= left or bottom <= top:
            raise ValueError(
                f"crop recipe {recipe!r} needs a larger image than {image.width}x{image.height} (box {box})"
            )
        if box != (0, 0, *image.size):
            image = image.crop(box)
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.LANCZOS)
    return image


def prepare(
    image: Image.Image, size: int, recipe: str, channels: int, rng: np.random.Generator | None = None
) -> np.ndarray:
    """A decoded image as a uint8 ``(C, H, W)`` array of the requested size and channels."""
    array = np.asarray(apply_recipe(to_8bit(image, channels), size, recipe, rng))
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
