"""Before the loop: the device, the pretrained weights a run starts from and what else ``train`` asks
of the model, and the config entries a user-built model or in-memory data resolve (so that a run's
config describes it completely)."""

from __future__ import annotations

import torch

from vaekit.config import Config, ConfigError
from vaekit.data import ImageDataset
from vaekit.data.memory import MEMORY_SOURCE, fingerprint
from vaekit.defaults import BF16_PAYS, bf16_speedup
from vaekit.engine import distributed
from vaekit.models import VAE
from vaekit.pretrained import load_initial_weights


def resolve_precision(name: str, device: torch.device, ranks: distributed.Ranks) -> str:
    """``train.precision``, with ``auto`` resolved: bf16 where its matrix products are measured
    faster on this device (on every rank), else fp32."""
    if name != "auto":
        return name
    fast = bf16_speedup(device.type) >= BF16_PAYS
    if ranks.distributed:
        fast = not distributed.any_rank(not fast, device)
    return "bf16" if fast else "fp32"


def resolve_device(name: str) -> torch.device:
    """The torch device ``train.device`` names; one that this machine lacks is a ``ConfigError``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise ConfigError(
            f"train.device: {name!r} is not available here (torch sees {torch.cuda.device_count()} GPU(s))"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("train.device: 'mps' is not available here")
    return device


def prepare_model(model: VAE, config: Config, resume: bool) -> None:
    """What ``train`` asks of the model before training: initial weights (``init``, not on resume),
    a frozen encoder (``trainable: decoder``), gradient checkpointing."""
    train = config.train
    if train.init and not resume:
        load_initial_weights(model, train.init)
    if train.trainable == "decoder":
        model.encoder.requires_grad_(False)
        model.encoder_frozen = True
    if train.gradient_checkpointing:
        if not hasattr(model, "set_gradient_checkpointing"):
            raise ConfigError(f"train.gradient_checkpointing: model.arch {config.model.arch} does not support it")
        model.set_gradient_checkpointing(True)


def describe_model(config: Config, model: VAE) -> None:
    """Record a user-built model in the config, so that the run can be loaded again."""
    modules = getattr(model, "modules_config", None)
    if modules is not None:
        config.model.arch = "modules"
        config.model.modules = modules
    if getattr(model, "likelihood_config", None) is not None:
        config.likelihood = model.likelihood_config


def describe_data(config: Config, dataset: ImageDataset) -> None:
    """Resolve the data's shape into the config (and name in-memory data), so it is complete."""
    shape = dataset.image_shape
    if dataset.source == MEMORY_SOURCE:
        config.data.source = MEMORY_SOURCE
        config.data.fingerprint = fingerprint(dataset)
        if len(shape) == 1:
            config.data.vector_dim = shape[0]
            return
        config.data.image_size = shape[-1]
    config.data.channels = shape[0]  # resolve "auto" so the saved config is complete
    if shape[1:] != (config.data.image_size, config.data.image_size):
        raise ValueError(f"dataset images are {shape[1:]}, config wants {config.data.image_size} px")
