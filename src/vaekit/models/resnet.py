"""Soft-IntroVAE's residual encoder / decoder, with the official module names (``main.res_in_64``,
``main.down_to_32``, ``fc``, ``main.predict``) so its checkpoints line up key for key.

Encoder: 5x5 conv + BN + LeakyReLU 0.2 + 2x2 average pool, then per entry of ``channels`` a
residual block and a pool, a last residual block, and a dense layer to (mean, logvar). Decoder:
dense + ReLU to the encoder's output map, per entry a residual block and a nearest x2 upsampling,
a last residual block and a 5x5 conv to the image (linear output). Residual blocks have a 1x1 skip
conv when the width changes. Published widths per image size are in ``CHANNELS``.
"""

from __future__ import annotations

import torch
from torch import nn

from vaekit.config import ModelConfig
from vaekit.likelihoods import Likelihood
from vaekit.models.base import VAE
from vaekit.models.latents import latent_parameters
from vaekit.models.registry import ARCHITECTURES

CHANNELS = {
    28: [64, 128],
    32: [64, 128, 256],
    64: [64, 128, 256, 512],
    128: [64, 128, 256, 512, 512],
    256: [64, 128, 256, 512, 512, 512],
}


class ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_expand = nn.Conv2d(c_in, c_out, 1, bias=False) if c_in != c_out else None
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.LeakyReLU(0.2)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu2 = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = self.conv_expand(x) if self.conv_expand is not None else x
        out = self.conv2(self.relu1(self.bn1(self.conv1(x))))
        return self.relu2(self.bn2(out + identity))


class ResNetEncoder(nn.Module):
    def __init__(
        self, image_channels: int, size: int, channels: list[int], latent_dim: int, parameters: int = 2
    ) -> None:
        super().__init__()
        width = channels[0]
        self.parameters_per_latent = parameters
        self.main = nn.Sequential(
            nn.Conv2d(image_channels, width, 5, padding=2, bias=False), nn.BatchNorm2d(width), nn.LeakyReLU(0.2),
            nn.AvgPool2d(2),
        )  # fmt: skip
        side = size // 2
        for c in channels[1:]:
            self.main.add_module(f"res_in_{side}", ResidualBlock(width, c))
            self.main.add_module(f"down_to_{side // 2}", nn.AvgPool2d(2))
            width, side = c, side // 2
        self.main.add_module(f"res_in_{side}", ResidualBlock(width, width))
        self.output_shape = (width, side, side)
        self.fc = nn.Linear(width * side * side, parameters * latent_dim)  # a plain Linear, as in the official code

    def forward(self, x: torch.Tensor):
        return self.fc(self.main(x).flatten(1)).chunk(self.parameters_per_latent, dim=1)


class ResNetDecoder(nn.Module):
    def __init__(self, image_channels: int, map_shape: tuple[int, int, int], channels: list[int], latent_dim: int):
        super().__init__()
        width, side, _ = map_shape
        self.map_shape = map_shape
        self.fc = nn.Sequential(nn.Linear(latent_dim, width * side * side), nn.ReLU())
        self.main = nn.Sequential()
        for c in reversed(channels):
            self.main.add_module(f"res_in_{side}", ResidualBlock(width, c))
            self.main.add_module(f"up_to_{side * 2}", nn.Upsample(scale_factor=2, mode="nearest"))
            width, side = c, side * 2
        self.main.add_module(f"res_in_{side}", ResidualBlock(width, width))
        self.main.add_module("predict", nn.Conv2d(width, image_channels, 5, padding=2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(self.fc(z).view(len(z), *self.map_shape))


@ARCHITECTURES.register(
    "resnet",
    summary="Soft-IntroVAE's residual encoder and decoder (channels 64..512, BatchNorm)",
    capabilities={"images", "latent-kinds", "batch-statistics", "onnx", "torchscript"},
    tiny={"model.channels": [4, 8]},
)
class ResNetVAE(VAE):
    """Soft-IntroVAE's network; ``model.channels`` empty means the published widths for the size."""

    def __init__(self, config: ModelConfig, likelihood: Likelihood, image_shape: tuple[int, int, int]) -> None:
        super().__init__(likelihood, image_shape)
        image_channels, size, width = image_shape
        channels = list(config.channels) or CHANNELS.get(size, [])
        if not channels or size != width or size % 2 ** len(channels):
            raise ValueError(
                f"resnet VAE: {size}x{width} px needs square images divisible by 2^len(model.channels) "
                f"(published widths exist for {sorted(CHANNELS)} px)"
            )
        self.latent_shape = (config.latent_dim,)
        self.encoder = ResNetEncoder(image_channels, size, channels, config.latent_dim, latent_parameters(config))
        self.decoder = ResNetDecoder(image_channels, self.encoder.output_shape, channels, config.latent_dim)
