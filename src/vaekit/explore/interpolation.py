"""Latent interpolation (lerp, slerp) and animated GIFs that hold and play back and forth."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image

from vaekit.explore.grids import make_grid
from vaekit.schema import ConfigError


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Straight-line interpolation; ``t`` broadcasts over a leading steps axis."""
    t = t.view(-1, *([1] * a.dim()))
    return (1 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of flattened latents (falls back to lerp for parallel vectors)."""
    flat_a, flat_b = a.flatten(), b.flatten()
    cos = torch.dot(flat_a, flat_b) / (flat_a.norm() * flat_b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    if omega.abs() < 1e-4:
        return lerp(a, b, t)
    t = t.view(-1, *([1] * a.dim()))
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def variance_preserving(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """(A (N - t) + B t) / sqrt((N - t)^2 + t^2) for t = 0..N (N = steps - 1): every point of the
    path has the prior's variance when A and B are independent N(0, I) draws."""
    n = steps - 1
    t = torch.arange(steps, device=a.device, dtype=a.dtype).view(-1, *([1] * a.dim()))
    return (a * (n - t) + b * t) / torch.sqrt((n - t) ** 2 + t**2)


MODES = {"lerp": lerp, "slerp": slerp}


def interpolate(a: torch.Tensor, b: torch.Tensor, steps: int, mode: str = "slerp") -> torch.Tensor:
    """``steps`` latents from ``a`` to ``b`` (both ends included), stacked on a new first axis."""
    if mode not in MODES:
        raise ConfigError(f"unknown interpolation mode {mode!r}: use lerp or slerp")
    t = torch.linspace(0, 1, steps, device=a.device, dtype=a.dtype)
    return MODES[mode](a, b, t)


def save_gif(
    frames: list[np.ndarray] | torch.Tensor,
    path: Path | str | BinaryIO,
    *,
    frame_ms: int = 80,
    hold_ms: int = 600,
    pingpong: bool = True,
    scale: int = 1,
) -> Path | BinaryIO:
    """An animated GIF that holds the first and last frames and plays forward then back.

    ``frames``: ``(T, C, H, W)`` images in [0, 1] or a list of uint8 ``(H, W, 3)`` pictures;
    ``path`` a file name or an open binary file (e.g. ``io.BytesIO``).
    """
    if isinstance(frames, torch.Tensor):
        frames = [make_grid(frame[None], nrow=1, padding=0) for frame in frames]
    pictures = [Image.fromarray(frame) for frame in frames]
    if scale > 1:
        pictures = [p.resize((p.width * scale, p.height * scale), Image.Resampling.NEAREST) for p in pictures]
    durations = [frame_ms] * len(pictures)
    durations[0] = durations[-1] = hold_ms
    if pingpong and len(pictures) > 2:
        pictures += pictures[-2:0:-1]
        durations += [frame_ms] * (len(pictures) - len(durations))
    if isinstance(path, str | Path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
    options = {"save_all": True, "append_images": pictures[1:], "duration": durations, "loop": 0, "disposal": 2}
    pictures[0].save(path, format="GIF", **options)
    return path
