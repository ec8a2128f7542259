"""A VAE around the user's own encoder and decoder (``VAE.from_modules``)."""

from __future__ import annotations

import torch
from torch import nn

from vaekit.config import Config, ModulesConfig
from vaekit.likelihoods import Likelihood
from vaekit.models.base import VAE, DiagonalGaussian
from vaekit.plugins import import_object


class ModulesVAE(VAE):
    """``encoder(x) -> (mean, logvar)`` shaped like ``latent_shape`` per sample; ``decoder(z)`` ->
    the likelihood's parameters (e.g. a location before the output activation), shaped like the data."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_shape: tuple[int, ...],
        likelihood: Likelihood,
        data_shape: tuple[int, ...] = (),
    ) -> None:
        super().__init__(likelihood, data_shape)  # type: ignore[arg-type]  # set from the data when empty
        if not isinstance(encoder, nn.Module) or not isinstance(decoder, nn.Module):
            raise TypeError("VAE.from_modules takes an encoder and a decoder that are torch.nn.Module objects")
        self.encoder, self.decoder = encoder, decoder
        self.latent_shape = tuple(int(d) for d in latent_shape)
        if not self.latent_shape or min(self.latent_shape) < 1:
            raise ValueError(f"latent_shape must be positive sizes, e.g. (16,), got {latent_shape!r}")

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        out = self.encoder(x)
        if not (isinstance(out, tuple | list) and len(out) == 2):
            raise TypeError(f"the encoder must return (mean, logvar); it returned {type(out).__name__}")
        mean, logvar = out
        if tuple(mean.shape[1:]) != self.latent_shape or mean.shape != logvar.shape:
            raise ValueError(
                f"the encoder returned mean {tuple(mean.shape)} and logvar {tuple(logvar.shape)};"
                f" expected (batch, {', '.join(map(str, self.latent_shape))}) for both"
            )
        return DiagonalGaussian(mean, logvar)


def modules_from_config(config: ModulesConfig, trust_code: bool) -> tuple[nn.Module, nn.Module]:
    """Rebuild the encoder and decoder classes a ``from_modules`` config names (imports: trust needed)."""
    if not config.encoder or not config.decoder:
        raise ValueError("model.arch 'modules' needs model.modules.encoder and .decoder (made by VAE.from_modules)")
    built = []
    for role, spec, kwargs in (
        ("encoder", config.encoder, config.encoder_args),
        ("decoder", config.decoder, config.decoder_args),
    ):
        cls = import_object(spec, f"model.modules.{role}", trust_code)
        try:
            built.append(cls(**kwargs))
        except TypeError as err:
            raise ValueError(
                f"model.modules.{role} {spec}: cannot build it with {kwargs or 'no arguments'} ({err}); "
                f"give model.modules.{role}_args, or pass the modules: vaekit.load(run, modules=(encoder, decoder))"
            ) from err
    return built[0], built[1]


def data_shape(config: Config) -> tuple[int, ...]:
    """The per-sample data shape a config describes: (C, H, W), or (D,) for vector data."""
    if config.data.vector_dim:
        return (config.data.vector_dim,)
    return (config.data.channels or 3, config.data.image_size, config.data.image_size)
