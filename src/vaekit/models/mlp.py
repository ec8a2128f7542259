"""Fully connected encoder and decoder for vector data (``VAE.from_modules``), shaped like the
networks of Soft-IntroVAE's 2-D experiments: a linear input layer, ``layers`` hidden layers of
``hidden`` units with ReLU, a linear output."""

from __future__ import annotations

import torch
from torch import nn


def _stack(inputs: int, outputs: int, hidden: int, layers: int) -> nn.Sequential:
    blocks: list[nn.Module] = [nn.Linear(inputs, hidden), nn.ReLU()]
    for _ in range(layers):
        blocks += [nn.Linear(hidden, hidden), nn.ReLU()]
    return nn.Sequential(*blocks, nn.Linear(hidden, outputs))


class MLPEncoder(nn.Module):
    """(batch, inputs) -> (mean, logvar), each (batch, latent)."""

    def __init__(self, inputs: int = 2, latent: int = 2, hidden: int = 256, layers: int = 3) -> None:
        super().__init__()
        self.main = _stack(inputs, 2 * latent, hidden, layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.main(x.flatten(1)).chunk(2, dim=1)
        return mean, logvar


class MLPDecoder(nn.Module):
    """(batch, latent) -> (batch, outputs): the likelihood's location (use ``output='identity'``)."""

    def __init__(self, latent: int = 2, outputs: int = 2, hidden: int = 256, layers: int = 3) -> None:
        super().__init__()
        self.main = _stack(latent, outputs, hidden, layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.flatten(1))
