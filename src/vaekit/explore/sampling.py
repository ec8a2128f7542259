"""Sampling a trained model: seeded draws at a temperature, saved as a grid or one file each."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from PIL import Image

from vaekit.explore.grids import make_grid, to_uint8
from vaekit.explore.interpolation import interpolate, variance_preserving
from vaekit.limits import images_per_chunk
from vaekit.models.base import VAE
from vaekit.schema import ConfigError


@torch.no_grad()
def sample_images(
    model: VAE, n: int, *, seed: int = 0, temperature: float = 1.0, batch_size: int = 256
) -> torch.Tensor:
    """``n`` images in [0, 1], the same for the same seed."""
    return torch.cat(list(iter_samples(model, n, seed=seed, temperature=temperature, batch_size=batch_size)))


def iter_samples(
    model: VAE, n: int, *, seed: int = 0, temperature: float = 1.0, batch_size: int | None = None
) -> Iterator[torch.Tensor]:
    """The images of ``sample_images`` in chunks (``batch_size``, by default sized by the pixels:
    ``limits.images_per_chunk``, at most 256): memory bounded by one chunk at any image size."""
    batch_size = batch_size or images_per_chunk(model.image_shape, 256)
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch_size):
        yield model.sample(min(batch_size, n - start), temperature, generator).cpu()


def dump_images(images: Iterable[torch.Tensor], folder: Path | str, prefix: str = "sample") -> int:
    """One PNG per image (for FID tools): ``folder/sample-000000.png`` ..., from a batch or from
    chunks of one (written as they come); returns how many were written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chunks = [images] if isinstance(images, torch.Tensor) else images
    count = 0
    for chunk in chunks:
        for array in to_uint8(chunk):
            Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(folder / f"{prefix}-{count:06d}.png")
            count += 1
    return count


@torch.no_grad()
def interpolation_frames(
    model: VAE, images: torch.Tensor | None = None, *, steps: int = 16, mode: str = "slerp", seed: int = 0
) -> torch.Tensor:
    """Decoded frames from image A to image B (their posterior means) or between two random latents."""
    if images is not None:
        if len(images) != 2:
            raise ConfigError(f"interpolation needs exactly two images, got {len(images)}")
        device = next(model.parameters()).device
        z_a, z_b = model.embed(images.to(device))
    else:
        z_a, z_b = model.draw_latents(2, generator=torch.Generator().manual_seed(seed))
    return model.to_image(interpolate(z_a, z_b, steps, mode)).cpu()


@torch.no_grad()
def manifold_frames(model: VAE, rows: int, cols: int, *, steps: int = 30, seed: int = 0) -> list:
    """The style VAE's "manifold" animation: a rows x cols grid of random latents moving to a second
    grid along variance-preserving paths; one uint8 grid picture per step."""
    generator = torch.Generator().manual_seed(seed)
    n = rows * cols
    a, b = model.draw_latents(n, generator=generator), model.draw_latents(n, generator=generator)
    path = variance_preserving(a, b, steps)
    return [make_grid(model.to_image(z).cpu(), nrow=cols, padding=1) for z in path]
