"""Style-based VAE: a stride-2 encoder down to 4x4 and a StyleGAN-like decoder.

Decoder: a learned 4x4 constant; per resolution two layers (the first upsamples nearest x2, then
3x3 conv, then an optional [1, 2, 1] blur; the second is a 3x3 conv), each followed by per-pixel
noise with a learned per-channel scale (initialised to 0), LeakyReLU, per-sample per-channel
normalisation and a style modulation computed from w by a dense layer (``stylize``:
x * (scale + 1) + bias, or classic AdaIN x * scale + bias). w comes from z through a mapping MLP.
A 1x1 to-RGB conv ends it. Feature maps per level: min(channel_base / resolution, max_channels).

With ``level_latents`` the latent is split into one chunk per resolution and each level is styled
only by its own chunk (through a shared mapping MLP), so coarse and fine features get separate
KL terms (``latent_groups``) that the ELBO can weight differently.

The noise is injected only in training mode; in eval mode it is replaced by its mean (zero), so
reconstructions and samples are deterministic given z.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vaekit import noise
from vaekit.config import ConfigError, ModelConfig
from vaekit.likelihoods import Likelihood
from vaekit.models.base import VAE
from vaekit.models.blocks import LatentHead
from vaekit.models.latents import latent_parameters
from vaekit.models.registry import ARCHITECTURES
from vaekit.schema import MAX_WIDTH, non_negative, positive


@dataclass(frozen=True)
class StyleConfig:
    """Options of the style-based decoder (``model.arch: style``)."""

    mapping_layers: int = non_negative(8, 64)
    style_dim: int = positive(256, MAX_WIDTH)
    noise: bool = True  # per-pixel noise with a learned per-channel scale (starts at 0)
    blur: bool = True  # [1, 2, 1] blur after each upsampling conv
    modulation: Literal["stylize", "adain"] = "stylize"  # stylize: x * (scale + 1) + bias | adain: x * scale + bias
    level_latents: bool = False  # split z into one chunk per resolution, each styling its own level
    max_channels: int = positive(512, MAX_WIDTH)
    channel_base: int = positive(8192, 1 << 20)  # feature maps per level: min(channel_base / 2^level, max_channels)


def level_channels(resolution: int, style: StyleConfig) -> int:
    channels = min(style.channel_base // resolution, style.max_channels)
    if channels < 1:
        raise ConfigError(f"model.style.channel_base {style.channel_base} leaves no feature maps at {resolution} px")
    return channels


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(0.2)


class Blur(nn.Module):
    """Depthwise [1, 2, 1] x [1, 2, 1] / 16 filter, size-preserving."""

    def __init__(self) -> None:
        super().__init__()
        kernel = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("kernel", (kernel[:, None] * kernel[None, :] / 16).view(1, 1, 3, 3), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernel.to(x.dtype).expand(x.shape[1], 1, 3, 3), padding=1, groups=x.shape[1])


class NoiseInjection(nn.Module):
    """x + scale[c] * N(0, 1) per pixel (same noise for all channels); scale starts at 0."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        # through vaekit.noise: each image's noise is the same however the batch is split
        return x + self.scale * noise.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)


class StyleModulation(nn.Module):
    """Per-channel scale and bias from the style vector."""

    def __init__(self, style_dim: int, channels: int, mode: str) -> None:
        super().__init__()
        if mode not in ("stylize", "adain"):
            raise ValueError(f"model.style.modulation must be stylize or adain, got {mode!r}")
        self.mode = mode
        self.dense = variance_preserving(nn.Linear(style_dim, 2 * channels), gain=1.0)
        if mode == "adain":
            self.dense.bias.data[:channels] = 1.0

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        scale, bias = self.dense(w)[:, :, None, None].chunk(2, dim=1)
        return x * (scale + 1) + bias if self.mode == "stylize" else x * scale + bias


class StyleLayer(nn.Module):
    """[upsample] -> [conv] -> [blur] -> noise -> LeakyReLU -> instance norm -> style."""

    def __init__(self, c_in: int, c_out: int, style: StyleConfig, *, upsample: bool, conv: bool) -> None:
        super().__init__()
        self.upsample = upsample
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1) if conv else None
        self.blur = Blur() if (style.blur and upsample) else None
        self.noise = NoiseInjection(c_out) if style.noise else None
        self.act = _lrelu()
        self.norm = nn.InstanceNorm2d(c_out, affine=False)
        self.modulation = StyleModulation(style.style_dim, c_out, style.modulation)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        if self.conv is not None:
            x = self.conv(x)
        if self.blur is not None:
            x = self.blur(x)
        if self.noise is not None:
            x = self.noise(x)
        return self.modulation(self.norm(self.act(x)), w)


def variance_preserving(layer: nn.Linear, gain: float) -> nn.Linear:
    """He-style initialisation (weights N(0, gain^2 / fan_in), zero bias), as StyleGAN's mapping and
    style layers start. torch's default keeps a third of the variance per layer, so through a
    4-8 layer mapping z would barely move w at the start, and the encoder would learn to spread its
    codes far beyond the prior to be heard: reconstructions improve while samples stay one face."""
    nn.init.normal_(layer.weight, std=gain / math.sqrt(layer.in_features))
    nn.init.zeros_(layer.bias)
    return layer


def mapping_network(latent_dim: int, style: StyleConfig) -> nn.Sequential:
    if not style.mapping_layers:
        return nn.Sequential(variance_preserving(nn.Linear(latent_dim, style.style_dim), gain=1.0))
    layers: list[nn.Module] = []
    width, gain = latent_dim, nn.init.calculate_gain("leaky_relu", 0.2)
    for _ in range(style.mapping_layers):
        layers += [variance_preserving(nn.Linear(width, style.style_dim), gain), _lrelu()]
        width = style.style_dim
    return nn.Sequential(*layers)


class StyleDecoder(nn.Module):
    def __init__(self, latent_dim: int, image_channels: int, size: int, style: StyleConfig) -> None:
        super().__init__()
        self.resolutions = [2**r for r in range(2, int(math.log2(size)) + 1)]
        self.level_latents = style.level_latents
        levels = len(self.resolutions)
        if self.level_latents and latent_dim % levels:
            raise ValueError(f"model.latent_dim {latent_dim} must split evenly into {levels} levels for {size} px")
        self.mapping = mapping_network(latent_dim // levels if self.level_latents else latent_dim, style)
        first = level_channels(4, style)
        self.const = nn.Parameter(torch.ones(1, first, 4, 4))
        self.levels = nn.ModuleList()
        c_in = first
        for resolution in self.resolutions:
            c_out = level_channels(resolution, style)
            initial = resolution == 4
            self.levels.append(
                nn.ModuleList(
                    [
                        StyleLayer(c_in, c_out, style, upsample=not initial, conv=not initial),
                        StyleLayer(c_out, c_out, style, upsample=False, conv=True),
                    ]
                )
            )
            c_in = c_out
        self.to_rgb = nn.Conv2d(c_in, image_channels, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.level_latents:
            styles = [self.mapping(chunk) for chunk in z.chunk(len(self.levels), dim=1)]
        else:
            styles = [self.mapping(z)] * len(self.levels)
        # repeat, not expand: a view of a parameter made under no_grad claims requires_grad without a
        # grad_fn, which torch's module tracker (FlopCounterMode, the profiler's memory tracker) rejects
        x = self.const.repeat(z.shape[0], 1, 1, 1)
        for (first, second), w in zip(self.levels, styles, strict=True):
            x = second(first(x, w), w)
        return self.to_rgb(x)


class StyleEncoder(nn.Module):
    """from-RGB 1x1, then per level (conv 3x3 + conv 3x3 stride 2) down to 4x4, then a dense head."""

    def __init__(
        self, latent_dim: int, image_channels: int, size: int, style: StyleConfig, parameters: int = 2
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(image_channels, level_channels(size, style), 1), _lrelu()]
        resolution = size
        while resolution > 4:
            c_in, c_out = level_channels(resolution, style), level_channels(resolution // 2, style)
            layers += [
                nn.Conv2d(c_in, c_in, 3, padding=1),
                _lrelu(),
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1),
                _lrelu(),
            ]
            resolution //= 2
        last = level_channels(4, style)
        layers += [nn.Conv2d(last, last, 3, padding=1), _lrelu(), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.head = LatentHead(last * 16, latent_dim, parameters)

    def forward(self, x: torch.Tensor):
        return self.head(self.body(x))


@ARCHITECTURES.register(
    "style",
    options=StyleConfig,
    summary="StyleGAN-like decoder: learned constant, mapping network, per-level styles, noise, blur",
    capabilities={"images", "latent-kinds", "torchscript"},  # ONNX: instance norm of unknown channels
    tiny={"model.style.max_channels": 8, "model.style.mapping_layers": 1, "model.style.style_dim": 8},
)
class StyleVAE(VAE):
    """Encoder to a flat latent; style-based decoder. Square power-of-two sizes from 8 px."""

    def __init__(self, config: ModelConfig, likelihood: Likelihood, image_shape: tuple[int, int, int]) -> None:
        super().__init__(likelihood, image_shape)
        channels, height, width = image_shape
        if height != width or height < 8 or height & (height - 1):
            raise ValueError(f"style VAE needs square power-of-two images of at least 8 px, got {height}x{width}")
        style = config.style
        self.latent_shape = (config.latent_dim,)
        self.encoder = StyleEncoder(config.latent_dim, channels, height, style, latent_parameters(config))
        self.decoder = StyleDecoder(config.latent_dim, channels, height, style)
        if style.level_latents:
            chunk = config.latent_dim // len(self.decoder.resolutions)
            self.latent_groups = [
                (f"{r}px", i * chunk, (i + 1) * chunk) for i, r in enumerate(self.decoder.resolutions)
            ]
