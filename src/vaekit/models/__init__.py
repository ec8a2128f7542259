"""Architectures, each a ``VAE`` subclass, built from a config by ``create_model``."""

from __future__ import annotations

from vaekit.config import Config
from vaekit.likelihoods import create_likelihood
from vaekit.models.base import VAE, DiagonalGaussian, VAEOutput
from vaekit.models.conv import ConvVAE
from vaekit.models.resnet import ResNetVAE
from vaekit.models.spatial import SpatialVAE
from vaekit.models.style import StyleVAE

ARCHITECTURES: dict[str, type[VAE]] = {"conv": ConvVAE, "resnet": ResNetVAE, "spatial": SpatialVAE, "style": StyleVAE}


def create_model(config: Config) -> VAE:
    """The model that ``config.model`` and ``config.likelihood`` describe, for ``config.data``'s image shape."""
    arch = config.model.arch
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: use one of {', '.join(ARCHITECTURES)}")
    channels = config.data.channels or 3
    image_shape = (channels, config.data.image_size, config.data.image_size)
    return ARCHITECTURES[arch](config.model, create_likelihood(config.likelihood), image_shape)


__all__ = ["ARCHITECTURES", "VAE", "DiagonalGaussian", "VAEOutput", "create_model"]
