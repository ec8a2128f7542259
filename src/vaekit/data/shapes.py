"""``shapes``: a procedural dataset of coloured shapes with known factors, deterministic by seed.

Each image shows one shape on a dark background. The factors, returned as labels, are
shape (0 square, 1 circle, 2 triangle, 3 star), hue (0..1), scale (0.3..0.6 of the image),
rotation (radians), and centre x, y (0..1).
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image, ImageDraw

from vaekit.data.cache import cached_dataset
from vaekit.data.dataset import ImageDataset
from vaekit.data.registry import DATA_SOURCES, Source

FACTORS = ["shape", "hue", "scale", "rotation", "x", "y"]
SHAPES = ["square", "circle", "triangle", "star"]
_SUPERSAMPLE = 4


def sample_factors(n: int, seed: int) -> np.ndarray:
    """``(n, 6)`` float32 factors in the order of ``FACTORS``."""
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.3, 0.6, n)
    margin = scale / 2 + 0.02
    return np.stack(
        [
            rng.integers(0, len(SHAPES), n),
            rng.uniform(0, 1, n),
            scale,
            rng.uniform(0, 2 * math.pi, n),
            rng.uniform(margin, 1 - margin),
            rng.uniform(margin, 1 - margin),
        ],
        axis=1,
    ).astype(np.float32)


def render(factors: np.ndarray, size: int, channels: int = 3) -> np.ndarray:
    """One image, uint8 ``(C, H, W)``, from a row of factors."""
    shape, hue, scale, rotation, x, y = (float(v) for v in factors)
    big = size * _SUPERSAMPLE
    image = Image.new("RGB", (big, big), (16, 16, 24))
    colour = tuple(int(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.8, 0.95))
    cx, cy, radius = x * big, y * big, scale * big / 2
    draw = ImageDraw.Draw(image)
    kind = SHAPES[int(shape)]
    if kind == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour)
    else:
        corners = {"square": 4, "triangle": 3, "star": 10}[kind]
        points = []
        for i in range(corners):
            r = radius * (0.45 if kind == "star" and i % 2 else 1.0)
            angle = rotation + 2 * math.pi * i / corners
            points.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
        draw.polygon(points, fill=colour)
    image = image.resize((size, size), Image.Resampling.BOX)
    if channels == 1:
        image = image.convert("L")
    array = np.asarray(image)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def load_shapes(*, n: int, image_size: int, channels: int | None, seed: int, cache_dir: str | None) -> ImageDataset:
    """``n`` shapes images (cached), with their factors as labels."""
    channels = channels or 3
    parts = {"n": n, "size": image_size, "channels": channels, "seed": seed}

    def build(_) -> ImageDataset:
        factors = sample_factors(n, seed)
        images = np.stack([render(row, image_size, channels) for row in factors])
        return ImageDataset(images=images, labels=factors, label_names=list(FACTORS), source="shapes")

    return cached_dataset(cache_dir, "shapes", parts, build)


def _load(path, config) -> ImageDataset:
    return load_shapes(
        n=config.num_images, image_size=config.image_size, channels=config.channels, seed=config.seed,
        cache_dir=config.cache_dir,
    )  # fmt: skip


DATA_SOURCES.add(
    "shapes", Source(_load), summary="procedural shapes, generated (the built-in default)", capabilities={"no-path"}
)
