"""The 2-D point sets of Soft-IntroVAE's density experiments (Daniel & Tamar 2021, section 5.1):
8 Gaussians on a circle, two spirals, a checkerboard and four rings.

Each is defined as in the paper's public code, so that vaekit's numbers can be set beside it:
the 8 Gaussians of its ``ToyDataset`` (circle of radius 2, s.d. 0.02, divided by 1.414) and the other
three of the normalising-flow benchmark sets it samples from. ``grid_range`` is the half-width of
the square its metrics use (2 for the Gaussians, 4 for the rest).
"""

from __future__ import annotations

import math

import torch

TOY2D_DATASETS = ("8gaussians", "2spirals", "checkerboard", "rings")
OFFICIAL_NAMES = {"8gaussians": "8Gaussians", "2spirals": "2spirals", "checkerboard": "checkerboard", "rings": "rings"}


def grid_range(name: str) -> float:
    """Half-width of the evaluation square: [-2, 2]^2 for 8 Gaussians, [-4, 4]^2 otherwise."""
    _check(name)
    return 2.0 if name == "8gaussians" else 4.0


def sample_toy2d(name: str, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` points of the named set as an (n, 2) float32 tensor."""
    _check(name)
    return {"8gaussians": _gaussians, "2spirals": _spirals, "checkerboard": _checkerboard, "rings": _rings}[name](
        n, generator
    )


def _check(name: str) -> None:
    if name not in TOY2D_DATASETS:
        raise ValueError(f"unknown 2-D dataset {name!r}: use one of {', '.join(TOY2D_DATASETS)}")


def _gaussians(n: int, generator: torch.Generator | None) -> torch.Tensor:
    angles = torch.arange(8) * (math.pi / 4)
    centres = torch.stack([angles.cos(), angles.sin()], dim=1)
    which = torch.randint(8, (n,), generator=generator)
    points = 2 * centres[which] + 0.02 * torch.randn(n, 2, generator=generator)  # ToyDataset's scale 2
    return points / 1.414


def _spirals(n: int, generator: torch.Generator | None) -> torch.Tensor:
    turns = torch.rand(n, generator=generator).sqrt() * (540 * 2 * math.pi / 360)
    x = -turns.cos() * turns + 0.5 * torch.rand(n, generator=generator)
    y = turns.sin() * turns + 0.5 * torch.rand(n, generator=generator)
    sign = torch.ones(n, 1)
    sign[n // 2 :] = -1  # the second arm is the first turned by 180 degrees
    points = sign * torch.stack([x, y], dim=1) / 3
    return points + 0.1 * torch.randn(n, 2, generator=generator)


def _checkerboard(n: int, generator: torch.Generator | None) -> torch.Tensor:
    x1 = 4 * torch.rand(n, generator=generator) - 2
    row = torch.rand(n, generator=generator) - 2 * torch.randint(2, (n,), generator=generator).float()
    x2 = row + x1.floor() % 2
    return 2 * torch.stack([x1, x2], dim=1)


def _rings(n: int, generator: torch.Generator | None) -> torch.Tensor:
    quarter = n // 4
    sizes = [n - 3 * quarter, quarter, quarter, quarter]  # radii 0.25, 0.5, 0.75, 1 (x 3)
    circles = []
    for size, radius in zip(sizes, (0.25, 0.5, 0.75, 1.0), strict=True):
        angles = torch.arange(size) * (2 * math.pi / size)
        circles.append(radius * torch.stack([angles.cos(), angles.sin()], dim=1))
    points = 3 * torch.cat(circles)
    points = points[torch.randint(n, (n,), generator=generator)]
    return points + 0.08 * torch.randn(n, 2, generator=generator)
