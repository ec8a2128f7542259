"""Any autoencoder class of diffusers as a vaekit architecture (``model.arch: diffusers``).

The model is built by the class itself from its own config (``model.diffusers.config``: the
arguments its ``config.json`` holds), so every detail of the class (FLUX.2's patchified batch-norm
statistics, Qwen-Image's causal 3-D convolutions on one frame, DC-AE's pixel-shuffle blocks, TAESD's
latent clamp, RAE's frozen encoder and latent normalisation) is the class's own. vaekit calls the
class's ``encode`` and ``decode``; the class's children are held in three parts, so that objectives,
decoder-only fine-tuning and checkpoints see an encoder and a decoder like any architecture's:

- ``encoder``: the children the class encodes with (trained, or frozen with ``train.trainable:
  decoder`` and always for RAE);
- ``decoder``: the children it decodes with;
- ``statistics``: what else it holds (latent-normalisation buffers): never trained, written at
  export the way the class stores them.

A state-dict key of the class is ``<child>.<rest>`` (or a buffer's own name); vaekit's is
``<part>.<child>.<rest>``, so the translation both ways is the part's name (``to_diffusers_state``).
``AutoencoderKL`` and ``VQModel`` are ``model.arch: autoencoder-kl`` (vaekit's own quantizers).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from vaekit.config import ConfigError, ModelConfig
from vaekit.io.hub import hub_id, hub_snapshot
from vaekit.likelihoods import Likelihood
from vaekit.models.base import VAE
from vaekit.models.registry import ARCHITECTURES
from vaekit.optional import require


@dataclass(frozen=True)
class AutoencoderClass:
    """What vaekit needs to know of one diffusers class beyond its interface."""

    latent: str  # the latent kind its encoder gives (model.latent)
    encoder: tuple[str, ...]  # its children that encode ...
    decoder: tuple[str, ...]  # ... and decode; any other child or buffer is a latent statistic
    compression: Callable[[Any], int]  # the spatial down-sampling factor, from the built class
    channels: Callable[[Any], int]  # latent channels
    output: str = "signed"  # likelihood.output of its image range: signed [-1, 1], identity [0, 1]
    frames: bool = False  # a video class: an image is one frame (B, C, 1, H, W)
    frozen_encoder: bool = False  # the encoder is pretrained and never trained (RAE)
    image_size: Callable[[Any], int] | None = None  # the one image size the class decodes, if fixed


def _blocks(key: str) -> Callable[[Any], int]:
    return lambda model: 2 ** (len(getattr(model.config, key)) - 1)


CLASSES: dict[str, AutoencoderClass] = {
    "AutoencoderKLFlux2": AutoencoderClass(
        "gaussian", ("encoder", "quant_conv"), ("post_quant_conv", "decoder"),
        _blocks("block_out_channels"), lambda m: m.config.latent_channels,
    ),
    "AutoencoderKLQwenImage": AutoencoderClass(
        "gaussian", ("encoder", "quant_conv"), ("post_quant_conv", "decoder"),
        lambda m: m.spatial_compression_ratio, lambda m: m.config.z_dim, frames=True,
    ),
    "AutoencoderDC": AutoencoderClass(
        "deterministic", ("encoder",), ("decoder",),
        lambda m: m.spatial_compression_ratio, lambda m: m.config.latent_channels,
    ),
    "AutoencoderTiny": AutoencoderClass(
        "deterministic", ("encoder",), ("decoder",),
        _blocks("num_encoder_blocks"), lambda m: m.config.latent_channels,
    ),
    "AutoencoderRAE": AutoencoderClass(
        "deterministic", ("encoder",), ("decoder",),
        lambda m: m.decoder_patch_size,
        lambda m: m.config.encoder_hidden_size, output="identity", frozen_encoder=True,
        image_size=lambda m: m.decoder_image_size,
    ),
}  # fmt: skip
CLASS_NAMES = tuple(CLASSES)
PARTS = ("encoder", "decoder", "statistics")  # the class's children as this model holds them


@dataclass(frozen=True)
class DiffusersOptions:
    """Any diffusers autoencoder class, built by the class from its own config (``model.arch: diffusers``)."""

    class_name: Literal[CLASS_NAMES] = "AutoencoderKLFlux2"  # type: ignore[valid-type]
    config: dict[str, Any] = field(default_factory=dict)  # the class's arguments (its config.json's)
    tiling: bool = False  # the class's tiled encode / decode, for images larger than its tile
    encoder_from: str = ""  # RAE: a transformers model folder (or hf:// id) whose weights the frozen encoder takes


class _Part(nn.Module):
    """Some children of the diffusers model (shared, not copied), called through ``run``."""

    def __init__(self, children: dict[str, nn.Module | None], run: Callable[[torch.Tensor], Any] | None) -> None:
        super().__init__()
        for name, child in children.items():
            self.add_module(name, child)
        self._run = [run]  # a list: the bound method is not a submodule, nor copied with it

    def forward(self, x: torch.Tensor) -> Any:
        return self._run[0](x)


@ARCHITECTURES.register(
    "diffusers",
    options=DiffusersOptions,
    summary="any diffusers autoencoder class (FLUX.2, Qwen-Image, DC-AE, TAESD, RAE) from its config",
    capabilities={"images", "latent-kinds", "gradient-checkpointing", "spatial-latent", "diffusers", "image-output"},
    tiny={
        "likelihood.output": "signed",
        "model.diffusers.class_name": "AutoencoderKLFlux2",
        "model.diffusers.config": {
            "block_out_channels": [8, 8],
            "layers_per_block": 1,
            "latent_channels": 2,
            "norm_num_groups": 4,
            "down_block_types": ["DownEncoderBlock2D"] * 2,
            "up_block_types": ["UpDecoderBlock2D"] * 2,
            "mid_block_add_attention": False,
        },
    },
)
class DiffusersVAE(VAE):
    """A diffusers autoencoder: ``encoder`` -> the class's posterior (or latent), ``decoder`` -> image."""

    def __init__(self, config: ModelConfig, likelihood: Likelihood, image_shape: tuple[int, int, int]) -> None:
        super().__init__(likelihood, image_shape)
        diffusers = require("diffusers", "diffusers", "model.arch diffusers")
        options: DiffusersOptions = config.diffusers
        spec = CLASSES[options.class_name]
        self.class_name, self.spec = options.class_name, spec
        if config.latent != spec.latent:
            raise ConfigError(
                f"model.latent: {options.class_name}'s latent is {spec.latent}; set model.latent {spec.latent}"
            )
        if likelihood.output != spec.output:
            raise ConfigError(
                f"likelihood.output: {options.class_name} works on images in "
                f"{'[-1, 1]' if spec.output == 'signed' else '[0, 1]'}; set likelihood.output {spec.output}"
            )
        try:
            autoencoder = getattr(diffusers, options.class_name)(**_arguments(options, image_shape))
        except (TypeError, ValueError) as err:  # an argument the class does not take, or refuses
            raise ConfigError(f"model.diffusers.config: {options.class_name} refused it ({err})") from None
        self._autoencoder = [autoencoder]  # not a submodule: its children live in the parts below
        if options.encoder_from:
            load_encoder(autoencoder, options.encoder_from)
        if options.tiling:
            try:
                autoencoder.enable_tiling()
            except (AttributeError, NotImplementedError):  # the mixin's stub says "not implemented"
                raise ConfigError(
                    f"model.diffusers.tiling: {options.class_name} has no tiled encode / decode"
                ) from None
        children = dict(autoencoder.named_children())
        parts = set(spec.encoder) | set(spec.decoder)
        self.encoder = _Part({name: children.get(name) for name in spec.encoder}, self._encode_images)
        self.decoder = _Part({name: children.get(name) for name in spec.decoder}, self._decode_latents)
        self.statistics = _Part({name: child for name, child in children.items() if name not in parts}, None)
        for name, buffer in autoencoder.named_buffers(recurse=False):
            persistent = name not in autoencoder._non_persistent_buffers_set
            self.statistics.register_buffer(name, buffer, persistent=persistent)
        factor, height, width = int(spec.compression(autoencoder)), *image_shape[1:]
        if spec.image_size is not None and (height, width) != (spec.image_size(autoencoder),) * 2:
            size = spec.image_size(autoencoder)
            raise ConfigError(f"data.image_size: {options.class_name} with this config decodes {size}x{size} px only")
        if height % factor or width % factor:
            raise ConfigError(
                f"data.image_size: {height}x{width} px does not divide by {options.class_name}'s factor {factor}"
            )
        self.latent_shape = (int(spec.channels(autoencoder)), height // factor, width // factor)
        if spec.frozen_encoder:
            self.encoder.requires_grad_(False)
            self.encoder_frozen = True

    @property
    def autoencoder(self) -> nn.Module:
        """The diffusers model itself, its buffers and mode those of this model."""
        autoencoder = self._autoencoder[0]
        autoencoder.training = self.training  # e.g. RAE's noise augmentation trains only in training mode
        for name, buffer in self.statistics.named_buffers(recurse=False):
            autoencoder._buffers[name] = buffer  # moved or replaced with this model (.to, load_state_dict)
        return autoencoder

    def _encode_images(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.autoencoder.encode(x.unsqueeze(2) if self.spec.frames else x, return_dict=False)[0]
        out = (out.mean, out.logvar) if self.spec.latent == "gaussian" else (out,)
        return tuple(t.squeeze(2) if self.spec.frames else t for t in out)

    def _decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        out = self.autoencoder.decode(z.unsqueeze(2) if self.spec.frames else z, return_dict=False)[0]
        return out.squeeze(2) if self.spec.frames else out

    def set_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute activations in backward (the class's own checkpointing)."""
        autoencoder = self.autoencoder
        if not autoencoder._supports_gradient_checkpointing:
            raise ConfigError(f"train.gradient_checkpointing: diffusers' {self.class_name} does not support it")
        if enabled:
            autoencoder.enable_gradient_checkpointing()
        else:
            autoencoder.disable_gradient_checkpointing()

    # ------------------------------------------------------------------ the class's own keys
    def to_diffusers_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """vaekit's state dict as the class's (``encoder.<child>...`` -> ``<child>...``)."""
        return {key.split(".", 1)[1]: value for key, value in state.items() if key.split(".", 1)[0] in PARTS}

    def from_diffusers_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The class's state dict as vaekit's keys; a key of no part is refused by the caller's check."""
        part_of = {name: part for part in PARTS for name, _ in getattr(self, part).named_children()}
        part_of |= {name: "statistics" for name, _ in self.statistics.named_buffers(recurse=False)}
        return {f"{part_of.get(key.split('.', 1)[0], 'unknown')}.{key}": value for key, value in state.items()}

    def exported(self, scaling: dict) -> nn.Module:
        """A fresh instance of the class with this model's weights and the measured latent
        statistics written where the class keeps them (config or buffers)."""
        autoencoder = self.autoencoder
        updates = _statistics_config(self.class_name, autoencoder, scaling)
        fresh = type(autoencoder)(**class_arguments(self.class_name, {**autoencoder.config, **updates}))
        state = self.to_diffusers_state(self.state_dict())
        if self.class_name == "AutoencoderKLFlux2" and scaling.get("latents_mean"):
            state |= _flux2_batch_norm(autoencoder, scaling)
        fresh.load_state_dict(state)
        return fresh


CHANNEL_KEYS = {  # the arguments that name the image channels, where not in_channels and out_channels
    "AutoencoderKLQwenImage": ("input_channels",),
    "AutoencoderDC": ("in_channels",),
    "AutoencoderRAE": ("num_channels",),
}


def _arguments(options: DiffusersOptions, image_shape: tuple[int, int, int]) -> dict[str, Any]:
    """The class's arguments: the config given, with the data's channels where the class names them."""
    arguments = {key: value for key, value in options.config.items() if not key.startswith("_")}
    for key in CHANNEL_KEYS.get(options.class_name, ("in_channels", "out_channels")):
        arguments.setdefault(key, image_shape[0])
    return arguments


def class_arguments(class_name: str, saved: dict[str, Any]) -> dict[str, Any]:
    """The entries of a saved config.json that ``class_name`` takes (diffusers' own ``from_config``
    ignores the rest too: names a class once took and records no more)."""
    diffusers = require("diffusers", "diffusers", "reading a diffusers folder")
    accepted = inspect.signature(getattr(diffusers, class_name).__init__).parameters
    return {key: value for key, value in saved.items() if key in accepted and key != "self"}


def _statistics_config(class_name: str, autoencoder: nn.Module, scaling: dict) -> dict[str, Any]:
    """Config entries that carry the measured latent statistics in ``class_name``'s convention."""
    if not scaling.get("scaling_factor"):
        return {}
    if class_name == "AutoencoderKLQwenImage" and scaling.get("latents_mean"):
        return {"latents_mean": list(scaling["latents_mean"]), "latents_std": list(scaling["latents_std"])}
    if class_name == "AutoencoderTiny":
        shift = float(scaling.get("shift_factor") or 0)
        return {"scaling_factor": float(scaling["scaling_factor"]), "shift_factor": shift}
    if class_name == "AutoencoderDC":
        return {"scaling_factor": float(scaling["scaling_factor"])}
    return {}  # FLUX.2: batch-norm buffers; RAE: its encoder's own normalisation stays


def _flux2_batch_norm(autoencoder: nn.Module, scaling: dict) -> dict[str, torch.Tensor]:
    """FLUX.2's latent batch norm over the 2x2-patchified latent: channel c's statistics for each of
    its patch positions (the pipeline normalises ``(B, 4C, H/2, W/2)``, channel ``4c + position``)."""
    positions = int(torch.tensor(autoencoder.config.patch_size).prod())
    mean = torch.tensor(scaling["latents_mean"], dtype=torch.float32).repeat_interleave(positions)
    var = torch.tensor(scaling["latents_std"], dtype=torch.float32).square().repeat_interleave(positions)
    return {"bn.running_mean": mean, "bn.running_var": var}


def tiny_autoencoder_config(teacher: VAE, width: int = 64) -> dict[str, Any]:
    """``AutoencoderTiny``'s config (TAESD's design: blocks of ``width`` channels) with ``teacher``'s
    latent channels and down-sampling, so that it encodes to and decodes from the teacher's latents."""
    if len(teacher.latent_shape) != 3:
        raise ConfigError(
            f"a tiny (TAESD) student needs a spatial latent (C, H, W); the teacher's is {teacher.latent_shape}"
        )
    channels, height = teacher.latent_shape[0], teacher.latent_shape[1]
    factor = teacher.image_shape[-2] // height
    downs = factor.bit_length() - 1
    if 2**downs != factor or teacher.image_shape[-2] != factor * height:
        raise ConfigError(f"a tiny (TAESD) student down-samples by powers of two; the teacher's factor is {factor}")
    return {
        "latent_channels": channels,
        "encoder_block_out_channels": [width] * (downs + 1),
        "decoder_block_out_channels": [width] * (downs + 1),
        "num_encoder_blocks": [1] + [3] * downs,
        "num_decoder_blocks": [3] * downs + [1],
    }


def load_encoder(autoencoder: nn.Module, source: str) -> None:
    """An RAE's frozen encoder weights from a transformers model folder or ``hf://`` id, read by
    transformers itself (its key conversions included; safetensors only, nothing unpickled)."""
    repo = hub_id(source)
    folder = hub_snapshot(repo) if repo is not None else Path(source)
    encoder = autoencoder.encoder
    if not (folder / "config.json").is_file():
        raise ConfigError(f"model.diffusers.encoder_from: {source} is not a transformers model folder (no config.json)")
    try:
        pretrained = type(encoder).from_pretrained(str(folder), use_safetensors=True, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as err:  # no safetensors, another model type, damaged
        raise ConfigError(f"model.diffusers.encoder_from: {source}: {str(err).splitlines()[0]}") from None
    own, theirs = encoder.state_dict(), pretrained.state_dict()
    wrong = sorted(k for k in own if k not in theirs or theirs[k].shape != own[k].shape)
    if wrong:
        raise ConfigError(
            f"model.diffusers.encoder_from: {source} does not fit the encoder of this config (e.g. {wrong[:3]}); "
            "give its hidden size, patch size and layers"
        )
    encoder.load_state_dict({key: theirs[key] for key in own})
