"""Kingma & Welling style convolutional VAE with a flat latent, for any square image size."""

from __future__ import annotations

from torch import nn

from vaekit.config import ConfigError, ModelConfig
from vaekit.likelihoods import Likelihood
from vaekit.models.base import VAE
from vaekit.models.blocks import LatentHead, activation, conv_down, conv_up, down_size
from vaekit.models.latents import latent_parameters
from vaekit.models.registry import ARCHITECTURES


@ARCHITECTURES.register(
    "conv",
    summary="strided convolutions to a flat latent, transposed convolutions back (Kingma & Welling)",
    capabilities={"images", "latent-kinds", "onnx", "torchscript"},
    tiny={"model.channels": [4, 8]},
)
class ConvVAE(VAE):
    """Strided-conv encoder -> (dense) -> latent head; dense -> transposed-conv decoder.

    One stride-2 layer per entry of ``config.channels``; the decoder mirrors the encoder and
    reproduces the exact input size (28, 32, 64, ... any size).
    """

    def __init__(self, config: ModelConfig, likelihood: Likelihood, image_shape: tuple[int, int, int]) -> None:
        super().__init__(likelihood, image_shape)
        channels_in, height, width = image_shape
        if height != width:
            raise ConfigError(f"model.arch conv: square images only, got {height}x{width} px")
        k, act, chans = config.kernel_size, config.activation, list(config.channels)
        sizes = [height]
        for _ in chans:
            sizes.append(down_size(sizes[-1], k))
        if sizes[-1] < 1:
            raise ConfigError(
                f"model.channels: {len(chans)} stride-2 layers shrink data.image_size {height} px below 1 px"
            )
        flat = chans[-1] * sizes[-1] ** 2
        hidden = config.hidden_dim
        self.latent_shape = (config.latent_dim,)

        encoder: list[nn.Module] = []
        for c_in, c_out in zip([channels_in, *chans[:-1]], chans, strict=True):
            encoder.append(conv_down(c_in, c_out, k, config.norm, act))
        encoder.append(nn.Flatten())
        if hidden:
            encoder += [nn.Linear(flat, hidden), activation(act)]
        encoder.append(LatentHead(hidden or flat, config.latent_dim, latent_parameters(config)))
        self.encoder = nn.Sequential(*encoder)

        decoder: list[nn.Module] = []
        if hidden:
            decoder += [nn.Linear(config.latent_dim, hidden), activation(act)]
        decoder += [nn.Linear(hidden or config.latent_dim, flat), activation(act)]
        decoder.append(nn.Unflatten(1, (chans[-1], sizes[-1], sizes[-1])))
        ups = list(reversed(chans))
        for i, (c_in, c_out) in enumerate(zip(ups, [*ups[1:], ups[-1]], strict=True)):
            size_in, size_out = sizes[-1 - i], sizes[-2 - i]
            decoder.append(conv_up(c_in, c_out, k, size_in, size_out, config.norm, act))
        decoder.append(nn.Conv2d(ups[-1], channels_in, 3, padding=1))
        self.decoder = nn.Sequential(*decoder)
