"""The KL autoencoder of latent diffusion (Stable Diffusion's VAE), built on diffusers'
``AutoencoderKL`` (the ``diffusers`` extra), as a vaekit model with a spatial latent.

The diffusers modules are held as ``encoder`` (its encoder + ``quant_conv`` -> mean, logvar) and
``decoder`` (``post_quant_conv`` + its decoder -> the image on the [-1, 1] scale, linear), so every
vaekit objective, command and the explorer use it unchanged; ``to_diffusers`` / ``from_diffusers``
translate weights and config both ways, key for key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from vaekit.config import Config, ConfigError, ModelConfig
from vaekit.io.checkpoints import CheckpointError
from vaekit.likelihoods import Likelihood
from vaekit.models.base import VAE
from vaekit.models.registry import ARCHITECTURES
from vaekit.optional import require
from vaekit.schema import MAX_CONFIG_BYTES, MAX_WIDTH, positive, read_bounded


@dataclass(frozen=True)
class AutoencoderKLConfig:
    """The KL autoencoder of latent diffusion (``model.arch: autoencoder-kl``), as diffusers'
    ``AutoencoderKL`` config: the down-sampling factor is 2^(len(block_out_channels) - 1)."""

    block_out_channels: list[int] = positive([128, 256, 512, 512], MAX_WIDTH)
    layers_per_block: int = positive(2, 64)
    latent_channels: int = positive(4, MAX_WIDTH)
    norm_num_groups: int = positive(32)
    act_fn: Literal["silu", "swish", "relu", "gelu", "mish"] = "silu"
    mid_block_attention: bool = True
    use_quant_conv: bool = True
    use_post_quant_conv: bool = True


def diffusers_config(options: AutoencoderKLConfig, image_shape: tuple[int, int, int]) -> dict[str, Any]:
    """The ``AutoencoderKL(**config)`` arguments that ``model.autoencoder_kl`` describes."""
    blocks = len(options.block_out_channels)
    return {
        "in_channels": image_shape[0],
        "out_channels": image_shape[0],
        "down_block_types": ["DownEncoderBlock2D"] * blocks,
        "up_block_types": ["UpDecoderBlock2D"] * blocks,
        "block_out_channels": list(options.block_out_channels),
        "layers_per_block": options.layers_per_block,
        "act_fn": options.act_fn,
        "latent_channels": options.latent_channels,
        "norm_num_groups": options.norm_num_groups,
        "sample_size": image_shape[-1],
        "mid_block_add_attention": options.mid_block_attention,
        "use_quant_conv": options.use_quant_conv,
        "use_post_quant_conv": options.use_post_quant_conv,
    }


class _Encoder(nn.Module):
    def __init__(self, encoder: nn.Module, quant_conv: nn.Module | None) -> None:
        super().__init__()
        self.encoder, self.quant_conv = encoder, quant_conv

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        moments = self.encoder(x)
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)
        mean, logvar = moments.chunk(2, dim=1)
        return mean, logvar


class _Decoder(nn.Module):
    def __init__(self, post_quant_conv: nn.Module | None, decoder: nn.Module) -> None:
        super().__init__()
        self.post_quant_conv, self.decoder = post_quant_conv, decoder

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        return self.decoder(z)


@ARCHITECTURES.register(
    "autoencoder-kl",
    options=AutoencoderKLConfig,
    summary="latent diffusion's KL autoencoder, diffusers' AutoencoderKL (the diffusers extra)",
    capabilities={"images", "gradient-checkpointing", "spatial-latent", "onnx", "torchscript", "diffusers"},
    tiny={
        "model.autoencoder_kl.block_out_channels": [8, 8],
        "model.autoencoder_kl.layers_per_block": 1,
        "model.autoencoder_kl.latent_channels": 2,
        "model.autoencoder_kl.norm_num_groups": 4,
    },
)
class AutoencoderKLVAE(VAE):
    """Encoder -> (mean, logvar) of a (latent_channels, H/f, W/f) latent; decoder -> image in [-1, 1]."""

    def __init__(self, config: ModelConfig, likelihood: Likelihood, image_shape: tuple[int, int, int]) -> None:
        super().__init__(likelihood, image_shape)
        diffusers = require("diffusers", "diffusers", "model.arch autoencoder-kl")
        options = config.autoencoder_kl
        factor = 2 ** (len(options.block_out_channels) - 1)
        height, width = image_shape[1:]
        if height % factor or width % factor:
            raise ConfigError(
                f"data.image_size: {height}x{width} px does not divide by autoencoder-kl's "
                f"down-sampling factor {factor}"
            )
        if any(c % options.norm_num_groups for c in options.block_out_channels):
            raise ConfigError(
                f"model.autoencoder_kl.norm_num_groups {options.norm_num_groups} must divide every block width "
                f"{list(options.block_out_channels)}"
            )
        self.diffusers_config = diffusers_config(options, image_shape)
        autoencoder = diffusers.AutoencoderKL(**self.diffusers_config)
        self.encoder = _Encoder(autoencoder.encoder, autoencoder.quant_conv)
        self.decoder = _Decoder(autoencoder.post_quant_conv, autoencoder.decoder)
        self._diffusers = [autoencoder]  # not a registered submodule: its parameters live in encoder/decoder
        self.latent_shape = (options.latent_channels, height // factor, width // factor)

    def set_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute activations in backward (diffusers' blocks): less memory, more time."""
        autoencoder = self._diffusers[0]
        if enabled:
            autoencoder.enable_gradient_checkpointing()
        else:
            autoencoder.disable_gradient_checkpointing()


# ---------------------------------------------------------------------- diffusers <-> vaekit
_PREFIXES = (("encoder.quant_conv.", "quant_conv."), ("decoder.post_quant_conv.", "post_quant_conv."),
             ("encoder.encoder.", "encoder."), ("decoder.decoder.", "decoder."))  # fmt: skip


def _renamed(state: dict[str, torch.Tensor], pairs) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        for old, new in pairs:
            if key.startswith(old):
                out[new + key[len(old) :]] = value
                break
    return out


def to_diffusers_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """vaekit's state dict of an ``AutoencoderKLVAE`` as ``AutoencoderKL``'s keys."""
    return _renamed(state, _PREFIXES)


def from_diffusers_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``AutoencoderKL``'s keys as vaekit's."""
    return _renamed(state, [(theirs, ours) for ours, theirs in _PREFIXES])


def is_diffusers_folder(folder: Path) -> bool:
    """A diffusers model folder: ``config.json`` beside diffusers weights, or naming AutoencoderKL."""
    if not (folder / "config.json").is_file():
        return False
    if any(folder.glob("diffusion_pytorch_model*")):
        return True  # then a damaged config.json is reported as such, not as "no model here"
    try:
        return read_diffusers_config(folder).get("_class_name") == "AutoencoderKL"
    except ConfigError:
        return False


def read_diffusers_config(folder: Path) -> dict:
    """``folder/config.json`` as a mapping (at most 1 MiB, UTF-8 JSON), or one ``ConfigError``."""
    path = folder / "config.json"
    try:
        raw = json.loads(read_bounded(path, MAX_CONFIG_BYTES).decode("utf-8"))
    except (OSError, ValueError) as err:  # unreadable, too large, not UTF-8, not JSON
        raise ConfigError(f"{path}: not a readable diffusers config ({err})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got a {type(raw).__name__}")
    return raw


def config_from_diffusers(folder: Path) -> Config:
    """A vaekit config for the ``AutoencoderKL`` saved in ``folder`` (diffusers' layout); every value
    is checked like any vaekit setting, and a message names the file and the setting."""
    path = folder / "config.json"
    raw = read_diffusers_config(folder)
    if "block_out_channels" not in raw:
        raise ConfigError(f"{path}: no 'block_out_channels' (is it an AutoencoderKL config?)")
    blocks = raw.get("down_block_types", [])
    unsupported = [t for t in blocks if t != "DownEncoderBlock2D"] if isinstance(blocks, list) else [blocks]
    if unsupported:
        raise ConfigError(f"{path}: block types {unsupported} are not supported (DownEncoderBlock2D only)")
    settings = {
        "model.latent_dim": raw.get("latent_channels", 4),
        "model.autoencoder_kl.block_out_channels": raw["block_out_channels"],
        "model.autoencoder_kl.layers_per_block": raw.get("layers_per_block", 1),
        "model.autoencoder_kl.latent_channels": raw.get("latent_channels", 4),
        "model.autoencoder_kl.norm_num_groups": raw.get("norm_num_groups", 32),
        "model.autoencoder_kl.act_fn": raw.get("act_fn", "silu"),
        "model.autoencoder_kl.mid_block_attention": raw.get("mid_block_add_attention", True),
        "model.autoencoder_kl.use_quant_conv": raw.get("use_quant_conv", True),
        "model.autoencoder_kl.use_post_quant_conv": raw.get("use_post_quant_conv", True),
        "data.image_size": raw.get("sample_size", 256),
        "data.channels": raw.get("in_channels", 3),
    }
    fixed = {"model.arch": "autoencoder-kl", "likelihood.name": "laplace", "likelihood.output": "signed"}
    try:
        return Config().with_overrides({**fixed, **settings})
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def load_diffusers_weights(model: VAE, folder: Path) -> None:
    """The weights of a diffusers folder into an ``AutoencoderKLVAE`` (its likelihood keeps its own)."""
    weights = diffusers_weights(folder)
    own = model.state_dict()
    missing = sorted(k for k in own if k not in weights and not k.startswith("likelihood."))
    unexpected = sorted(set(weights) - set(own))
    wrong = sorted(k for k in weights if k in own and own[k].shape != weights[k].shape)
    if missing or unexpected or wrong:
        raise ValueError(
            f"{folder}: weights do not fit the config beside them (e.g. {(missing or unexpected or wrong)[:3]})"
        )
    model.load_state_dict({**own, **weights})


def diffusers_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The weights of a diffusers model folder (safetensors only: nothing is unpickled)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    files = sorted(folder.glob("diffusion_pytorch_model*.safetensors"))
    if not files:
        raise ValueError(f"{folder}: no diffusion_pytorch_model.safetensors (only safetensors weights are read)")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        try:
            state.update(load_file(str(file)))
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"{file}: unreadable weights ({err})") from None
    return from_diffusers_state(state)
