"""Rebuilding a ``VAE.from_modules`` model's networks from its config, and the data shape a config describes."""

from __future__ import annotations

from torch import nn

from vaekit.config import Config, ConfigError
from vaekit.models.base import ModulesConfig, ModulesVAE
from vaekit.models.registry import ARCHITECTURES
from vaekit.plugins import import_object


def modules_from_config(config: ModulesConfig, trust_code: bool) -> tuple[nn.Module, nn.Module]:
    """Rebuild the encoder and decoder classes a ``from_modules`` config names (imports: trust needed)."""
    if not config.encoder or not config.decoder:
        raise ConfigError("model.arch 'modules' needs model.modules.encoder and .decoder (made by VAE.from_modules)")
    built = []
    for role, spec, kwargs in (
        ("encoder", config.encoder, config.encoder_args),
        ("decoder", config.decoder, config.decoder_args),
    ):
        cls = import_object(spec, f"model.modules.{role}", trust_code)
        try:
            built.append(cls(**kwargs))
        except TypeError as err:
            raise ConfigError(
                f"model.modules.{role} {spec}: cannot build it with {kwargs or 'no arguments'} ({err}); "
                f"give model.modules.{role}_args, or pass the modules: vaekit.load(run, modules=(encoder, decoder))"
            ) from err
    return built[0], built[1]


def data_shape(config: Config) -> tuple[int, ...]:
    """The per-sample data shape a config describes: (C, H, W), or (D,) for vector data."""
    if config.data.vector_dim:
        return (config.data.vector_dim,)
    return (config.data.channels or 3, config.data.image_size, config.data.image_size)


ARCHITECTURES.add(
    "modules",
    ModulesVAE,
    summary="your own encoder and decoder (VAE.from_modules), rebuilt from their class paths",
    capabilities={"user-networks", "onnx", "torchscript"},
    options=ModulesConfig,
)
