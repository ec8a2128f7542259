"""Spatial-Z VAE: the latent is a feature map (H/4 x W/4 x C), never flattened.

Encoder: 4x4 conv to 64, two stride-2 4x4 convs to 128 @ H/2 and 256 @ H/4, five residual blocks,
LeakyReLU 0.1, no biases; the mean and the log-variance are each a 1x1 conv to C channels.
Decoder: 1x1 conv to 256, per downsampling one (nearest x2 upsample + 3x3 conv + norm + LeakyReLU)
stage, and a 4x4 conv to the image channels (the likelihood's output activation, tanh in the
published setting, follows). ``dense: true`` is the same network with a flat latent of
``latent_dim`` between encoder and decoder, for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from vaekit.config import ModelConfig
from vaekit.likelihoods import Likelihood
from vaekit.models.base import VAE
from vaekit.models.latents import latent_parameters
from vaekit.models.registry import ARCHITECTURES
from vaekit.schema import MAX_WIDTH, bounded, non_negative, positive


@dataclass(frozen=True)
class SpatialConfig:
    """Options of the spatial-latent network (``model.arch: spatial``)."""

    latent_channels: int = positive(12, MAX_WIDTH)  # C of the H/f x W/f x C latent
    downsamplings: int = bounded(2, 0, 6)  # f = 2^downsamplings
    residual_blocks: int = non_negative(5, 256)
    norm: Literal["instance", "group", "sample", "none"] = "instance"  # sample: whole-sample normalisation
    dense: bool = False  # the dense-latent variant: flatten -> latent_dim -> back to a map


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "group":
        return nn.GroupNorm(min(32, channels), channels)
    if kind == "sample":  # normalise each sample over all its channels and pixels
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"model.spatial.norm must be instance, group, sample or none, got {kind!r}")


def _act() -> nn.Module:
    return nn.LeakyReLU(0.1)


def _conv4_same(c_in: int, c_out: int, bias: bool) -> nn.Sequential:
    """A size-preserving 4x4 conv (even kernel: pad 1 before, 2 after)."""
    return nn.Sequential(nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(c_in, c_out, 4, bias=bias))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            _norm(norm, channels),
            _act(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            _norm(norm, channels),
        )
        self.act = _act()

    def forward(self, x):
        return self.act(x + self.body(x))


class SpatialEncoder(nn.Module):
    def __init__(self, image_channels: int, options: SpatialConfig, parameters: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv4_same(image_channels, 64, bias=False), _act()]
        width = 64
        for _ in range(options.downsamplings):
            layers += [
                nn.Conv2d(width, width * 2, 4, stride=2, padding=1, bias=False),
                _norm(options.norm, width * 2),
                _act(),
            ]
            width *= 2
        layers += [ResidualBlock(width, options.norm) for _ in range(options.residual_blocks)]
        self.body = nn.Sequential(*layers)
        self.width = width
        self.mean = nn.Conv2d(width, options.latent_channels, 1, bias=False)
        self.logvar = nn.Conv2d(width, options.latent_channels, 1, bias=False) if parameters == 2 else None

    def forward(self, x):
        h = self.body(x)
        return (self.mean(h),) if self.logvar is None else (self.mean(h), self.logvar(h))


class SpatialDecoder(nn.Module):
    def __init__(self, image_channels: int, width: int, options: SpatialConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(options.latent_channels, width, 1, bias=False), _act()]
        for _ in range(options.downsamplings):
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(width, width // 2, 3, padding=1, bias=False),
                _norm(options.norm, width // 2),
                _act(),
            ]
            width //= 2
        layers.append(_conv4_same(width, image_channels, bias=True))
        self.body = nn.Sequential(*layers)

    def forward(self, z):
        return self.body(z)


class _DenseBridge(nn.Module):
    """Encoder maps -> the flat latent's parameters ((mean, logvar) of ``latent_dim``, or the latent)."""

    def __init__(
        self, encoder: SpatialEncoder, map_shape: tuple[int, int, int], latent_dim: int, parameters: int
    ) -> None:
        super().__init__()
        self.encoder, self.map_shape, self.parameters_per_latent = encoder, map_shape, parameters
        features = map_shape[0] * map_shape[1] * map_shape[2]
        self.head = nn.Linear(parameters * features, parameters * latent_dim)

    def forward(self, x):
        maps = torch.cat([m.flatten(1) for m in self.encoder(x)], dim=1)
        return self.head(maps).chunk(self.parameters_per_latent, dim=1)


@ARCHITECTURES.register(
    "spatial",
    options=SpatialConfig,
    summary="Spatial-Z: the latent is a feature map (H/4 x W/4 x C), no flatten",
    capabilities={"images", "latent-kinds", "spatial-latent", "onnx", "torchscript"},
    tiny={"model.spatial.latent_channels": 2, "model.spatial.residual_blocks": 1},
)
class SpatialVAE(VAE):
    """Latent ``(C, H/f, W/f)``; or, with ``dense``, a flat ``latent_dim`` through the same network."""

    def __init__(self, config: ModelConfig, likelihood: Likelihood, image_shape: tuple[int, int, int]) -> None:
        super().__init__(likelihood, image_shape)
        options = config.spatial
        channels, height, width = image_shape
        factor = 2**options.downsamplings
        if height % factor or width % factor:
            raise ValueError(
                f"spatial VAE with {options.downsamplings} downsamplings needs sizes divisible by {factor}"
            )
        parameters = latent_parameters(config)
        encoder = SpatialEncoder(channels, options, parameters)
        decoder = SpatialDecoder(channels, encoder.width, options)
        map_shape = (options.latent_channels, height // factor, width // factor)
        if options.dense:
            self.latent_shape = (config.latent_dim,)
            self.encoder = _DenseBridge(encoder, map_shape, config.latent_dim, parameters)
            self.decoder = nn.Sequential(
                nn.Linear(config.latent_dim, map_shape[0] * map_shape[1] * map_shape[2]),
                nn.Unflatten(1, map_shape),
                decoder,
            )
        else:
            self.latent_shape = map_shape
            self.encoder, self.decoder = encoder, decoder
