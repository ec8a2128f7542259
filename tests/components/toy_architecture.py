"""A toy architecture: one linear layer each way."""

from __future__ import annotations

import math

from torch import nn

from vaekit.models.base import VAE
from vaekit.models.registry import ARCHITECTURES


class _Encoder(nn.Module):
    def __init__(self, inputs: int, latent: int) -> None:
        super().__init__()
        self.linear = nn.Linear(inputs, 2 * latent)

    def forward(self, x):
        return self.linear(x.flatten(1)).chunk(2, dim=1)


@ARCHITECTURES.register("toy-linear", summary="a linear encoder and decoder (a test's toy)", capabilities={"images"})
class ToyLinearVAE(VAE):
    def __init__(self, config, likelihood, image_shape) -> None:
        super().__init__(likelihood, image_shape)
        pixels = math.prod(image_shape)
        self.latent_shape = (config.latent_dim,)
        self.encoder = _Encoder(pixels, config.latent_dim)
        self.decoder = nn.Sequential(nn.Linear(config.latent_dim, pixels), nn.Unflatten(1, tuple(image_shape)))
