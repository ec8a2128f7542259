"""Image grids: tensors in [0, 1] to a tiled uint8 picture, saved with Pillow."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vaekit.limits import require_within_budget
from vaekit.models.latents import latent_has


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``(N, C, H, W)`` floats in [0, 1] -> ``(N, H, W, C)`` uint8 (C = 1 or 3)."""
    array = images.detach().float().clamp(0, 1).mul(255).round().byte().cpu().numpy()
    return array.transpose(0, 2, 3, 1)


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: int = 255) -> np.ndarray:
    """Tile ``images`` into one ``(H, W, 3)`` uint8 picture, ``nrow`` images per row."""
    tiles = to_uint8(images)
    if tiles.shape[-1] == 1:
        tiles = np.repeat(tiles, 3, axis=-1)
    n, h, w, _ = tiles.shape
    cols = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, 3), pad_value, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        grid[top : top + h, left : left + w] = tile
    return grid


def save_grid(
    images: torch.Tensor, path: Path | str, nrow: int | None = None, scale: int = 1, padding: int = 2
) -> Path:
    """Write ``make_grid(images, nrow, padding)`` as an image file (PNG, JPEG, ... by its suffix),
    each pixel drawn ``scale`` x ``scale`` (nearest neighbour: small images stay sharp)."""
    picture = Image.fromarray(make_grid(images, nrow, padding))
    if scale > 1:
        require_within_budget("--scale (the enlarged picture)", scale * scale, (picture.height, picture.width, 3), 1)
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return path


def save_image(image: torch.Tensor, path: Path | str, scale: int = 1) -> Path:
    """Write one ``(C, H, W)`` image in [0, 1] at its own size (times ``scale``), with no border."""
    return save_grid(image[None], path, nrow=1, scale=scale, padding=0)


def interleave(originals: torch.Tensor, reconstructions: torch.Tensor, per_row: int) -> torch.Tensor:
    """Rows of originals followed by rows of their reconstructions, ``per_row`` images a row."""
    pieces = []
    for start in range(0, len(originals), per_row):
        pieces += [originals[start : start + per_row], reconstructions[start : start + per_row]]
    return torch.cat(pieces)


def save_run_grids(
    model, originals: torch.Tensor, folder: Path, tag: str, n: int, seed: int, sampling=contextlib.nullcontext
) -> dict[str, Path]:
    """``recon-TAG.png`` (``originals`` beside their reconstructions) and ``samples-TAG.png`` (``n``
    images of latents drawn with ``seed``, decoded inside ``sampling()``) in ``folder``, eval mode;
    no samples from a model with nothing to draw from (a deterministic latent before a sampler is fitted)."""
    per_row = max(1, int(math.sqrt(n)))
    generator = torch.Generator().manual_seed(seed)
    drawable = latent_has(model, "prior") or getattr(model, "latent_sampler", None) is not None
    with model.evaluating():
        recon = model.reconstruct(originals)
        with sampling():
            samples = model.sample(n, generator=generator) if drawable else None
    grids = {"recon": save_grid(interleave(originals, recon, per_row), folder / f"recon-{tag}.png", per_row)}
    if samples is not None:
        grids["samples"] = save_grid(samples, folder / f"samples-{tag}.png", per_row)
    return grids
