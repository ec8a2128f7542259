"""The KL autoencoder of latent diffusion (Stable Diffusion's VAE), built on diffusers'
``AutoencoderKL`` (the ``diffusers`` extra), as a vaekit model with a spatial latent.

The diffusers modules are held as ``encoder`` (its encoder + ``quant_conv`` -> mean, logvar) and
``decoder`` (``post_quant_conv`` + its decoder -> the image on the [-1, 1] scale, linear), so every
vaekit objective, command and the explorer use it unchanged; ``to_diffusers`` / ``from_diffusers``
translate weights and config both ways, key for key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from vaekit.config import ConfigError, ModelConfig
from vaekit.likelihoods import Likelihood
from vaekit.models.base import VAE
from vaekit.models.latents import latent_parameters
from vaekit.models.registry import ARCHITECTURES
from vaekit.optional import require
from vaekit.schema import MAX_WIDTH, positive


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


VQ_KEYS = ("in_channels", "out_channels", "down_block_types", "up_block_types", "block_out_channels",
           "layers_per_block", "act_fn", "latent_channels", "sample_size", "norm_num_groups")  # fmt: skip


def _single_latent(diffusers, config: dict[str, Any]) -> nn.Module:
    """diffusers' ``VQModel`` of the same blocks (one latent map, no ``double_z``), for latent kinds
    that take one tensor per element; its quantizer is unused (vaekit's latent kind quantizes)."""
    if not (config["use_quant_conv"] and config["use_post_quant_conv"]):
        raise ConfigError(
            "model.autoencoder_kl: a single latent map (model.latent other than gaussian) keeps quant convs"
        )
    return diffusers.VQModel(**_vq_arguments(config, 1))


def _vq_arguments(config: dict[str, Any], codes: int) -> dict[str, Any]:
    return {
        **{key: config[key] for key in VQ_KEYS},
        "num_vq_embeddings": codes,
        "vq_embed_dim": config["latent_channels"],
        "mid_block_add_attention": config["mid_block_add_attention"],
    }


def vq_model_config(model: VAE) -> dict[str, Any]:
    """``VQModel(**config)`` for an autoencoder-kl with a vector-quantized latent, or one ``ConfigError``
    naming what a ``VQModel`` cannot hold (it looks its codes up in the latent's own width, Euclidean)."""
    bottleneck = model.bottleneck
    options = getattr(bottleneck, "options", None)
    width = bottleneck.layout.width if options is not None else 0
    if options is None or bottleneck.name != "vq" or options.cosine or options.codebook_dim not in (0, width):
        raise ConfigError(
            f"export --format diffusers: a VQModel holds one Euclidean codebook of the latent's width; "
            f"model.latent {bottleneck.name}"
            + (" with model.vq.cosine or a projected codebook_dim" if bottleneck.name == "vq" else "")
            + " cannot be written as one (use --format onnx, torchscript or the run's safetensors)"
        )
    return _vq_arguments(model.diffusers_config, options.codebook_size)


class _Encoder(nn.Module):
    def __init__(self, encoder: nn.Module, quant_conv: nn.Module | None, parameters: int = 2) -> None:
        super().__init__()
        self.encoder, self.quant_conv, self.parameters_per_latent = encoder, quant_conv, parameters

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        moments = self.encoder(x)
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)
        return moments.chunk(self.parameters_per_latent, dim=1)


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
    capabilities={
        "images",
        "latent-kinds",
        "gradient-checkpointing",
        "spatial-latent",
        "onnx",
        "torchscript",
        "diffusers",
    },
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
        parameters = latent_parameters(config)
        autoencoder = diffusers.AutoencoderKL(**self.diffusers_config)
        if parameters != 2:  # a single latent map (a tokenizer's, as diffusers' VQModel): no double_z
            autoencoder = _single_latent(diffusers, self.diffusers_config)
        self.encoder = _Encoder(autoencoder.encoder, autoencoder.quant_conv, parameters)
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


CODEBOOK = "bottleneck.quantizer._codebook.embed"  # vaekit's vector-quantized codes, (1, K, D)
DIFFUSERS_CODEBOOK = "quantize.embedding.weight"  # VQModel's, (K, D)


def to_diffusers_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """vaekit's state dict of an ``AutoencoderKLVAE`` as ``AutoencoderKL``'s (or ``VQModel``'s) keys."""
    renamed = _renamed(state, _PREFIXES)
    if CODEBOOK in state:
        renamed[DIFFUSERS_CODEBOOK] = state[CODEBOOK][0]
    return renamed


def from_diffusers_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``AutoencoderKL``'s (or ``VQModel``'s) keys as vaekit's."""
    renamed = _renamed(state, [(theirs, ours) for ours, theirs in _PREFIXES])
    if DIFFUSERS_CODEBOOK in state:
        renamed[CODEBOOK] = state[DIFFUSERS_CODEBOOK][None]
    return renamed
