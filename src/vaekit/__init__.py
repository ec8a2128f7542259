"""vaekit: train and use variational autoencoders on images.

>>> import vaekit
>>> run = vaekit.train(preset="conv-mnist", data="path/to/mnist", overrides=["train.epochs=3"])
>>> model = vaekit.load(run)
>>> images = model.generate(16)          # (16, C, H, W) in [0, 1]

Importing vaekit loads nothing heavy (no torch, no matplotlib backend switch): each name below is
imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vaekit.version import __version__ as __version__

_EXPORTS = {
    "train": "vaekit.api",
    "load": "vaekit.pretrained",
    "evaluate": "vaekit.api",
    "sample": "vaekit.api",
    "fit_sampler": "vaekit.api",
    "use_sampler": "vaekit.api",
    "distill": "vaekit.api",
    "use_decoder": "vaekit.api",
    "reconstruct": "vaekit.api",
    "tokenize": "vaekit.api",
    "decode": "vaekit.api",
    "interpolate": "vaekit.api",
    "attributes": "vaekit.api",
    "edit": "vaekit.api",
    "latent_map": "vaekit.api",
    "serve": "vaekit.web",
    "load_images": "vaekit.api",
    "resolve_config": "vaekit.api",
    "Config": "vaekit.config",
    "available_presets": "vaekit.config",
    "load_preset": "vaekit.config",
    "VAE": "vaekit.models",
    "create_model": "vaekit.models",
    "Callback": "vaekit.training.callbacks",
    "allow_code": "vaekit.plugins",
}

__all__ = [
    "VAE",
    "Callback",
    "Config",
    "allow_code",
    "attributes",
    "available_presets",
    "create_model",
    "decode",
    "distill",
    "edit",
    "evaluate",
    "fit_sampler",
    "interpolate",
    "latent_map",
    "load",
    "load_images",
    "load_preset",
    "reconstruct",
    "resolve_config",
    "sample",
    "serve",
    "tokenize",
    "train",
    "use_decoder",
    "use_sampler",
]

if TYPE_CHECKING:
    from vaekit.api import (
        attributes,
        decode,
        distill,
        edit,
        evaluate,
        fit_sampler,
        interpolate,
        latent_map,
        load_images,
        reconstruct,
        resolve_config,
        sample,
        tokenize,
        train,
        use_decoder,
        use_sampler,
    )
    from vaekit.config import Config, available_presets, load_preset
    from vaekit.models import VAE, create_model
    from vaekit.plugins import allow_code
    from vaekit.pretrained import load
    from vaekit.training.callbacks import Callback
    from vaekit.web import serve


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vaekit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
