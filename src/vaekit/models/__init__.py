"""Architectures, each a ``VAE`` subclass, built from a config by ``create_model``.

Adding an architecture is one file defining a ``VAE`` subclass built as
``Class(model_config, likelihood, image_shape)`` that registers itself in ``ARCHITECTURES``
(``models/registry.py``), found without an import line; a plug-in outside vaekit is named
``model.arch: package.module:Class`` (imported only with trust_code).
"""

from __future__ import annotations

from vaekit.config import Config, ConfigError
from vaekit.likelihoods import create_likelihood
from vaekit.models.base import VAE, DiagonalGaussian, ModulesVAE, VAEOutput
from vaekit.models.latents import LATENTS, create_bottleneck
from vaekit.models.modules import data_shape, modules_from_config
from vaekit.models.registry import ARCHITECTURES
from vaekit.plugins import import_object, is_code_reference


def create_model(config: Config, *, trust_code: bool = False, modules: tuple | None = None) -> VAE:
    """The model that ``config.model`` and ``config.likelihood`` describe, for ``config.data``'s image
    shape; it records ``config`` as ``model.config`` (a model describes itself).

    ``trust_code`` allows importing the code a config names (plug-in architectures, the networks of
    a ``from_modules`` model, user perceptual networks); ``modules=(encoder, decoder)`` hands a
    ``from_modules`` model its networks instead of rebuilding them from their class paths.
    """
    model = _build_model(config, trust_code=trust_code, modules=modules)
    model.bottleneck = create_bottleneck(config.model, tuple(model.latent_shape))
    model.config = config
    return model


def _build_model(config: Config, *, trust_code: bool = False, modules: tuple | None = None) -> VAE:
    arch = config.model.arch
    if config.model.latent != "gaussian" and not is_code_reference(arch):
        entry = ARCHITECTURES.get(arch)
        if not (entry.has("latent-kinds") or entry.has("user-networks")):
            kinds = [e.name for e in ARCHITECTURES if e.has("latent-kinds")]
            raise ConfigError(
                f"model.latent {config.model.latent}: model.arch {arch} builds a Gaussian latent only; "
                f"use one of {', '.join(kinds)}"
            )
    likelihood = create_likelihood(config.likelihood, trust_code=trust_code)
    shape = data_shape(config)
    if is_code_reference(arch):
        cls = import_object(arch, "model.arch", trust_code)
        if not (isinstance(cls, type) and issubclass(cls, VAE)):
            raise ConfigError(f"model.arch: {arch} is not a vaekit.VAE subclass")
        return cls(config.model, likelihood, shape)
    entry = ARCHITECTURES.get(arch)
    if entry.has("user-networks"):
        encoder, decoder = modules or modules_from_config(config.model.modules, trust_code)
        model = entry.factory(encoder, decoder, tuple(config.model.modules.latent_shape), likelihood, shape)
        model.modules_config = config.model.modules
        return model
    if entry.has("images") and len(shape) != 3:
        raise ConfigError(f"model.arch {arch!r} is for images; vector data needs your own networks (VAE.from_modules)")
    return entry.factory(config.model, likelihood, shape)


__all__ = ["ARCHITECTURES", "LATENTS", "VAE", "DiagonalGaussian", "ModulesVAE", "VAEOutput", "create_model"]
