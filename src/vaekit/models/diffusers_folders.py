"""diffusers model folders (``config.json`` + ``diffusion_pytorch_model*.safetensors``) as vaekit
configs and weights: ``AutoencoderKL`` and ``VQModel`` as ``model.arch: autoencoder-kl``, every
class of ``models/diffusers_adapter.py`` as ``model.arch: diffusers``; any other class is refused in
one line (a folder is read whole or not at all)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vaekit.config import Config, ConfigError
from vaekit.io.checkpoints import read_safetensors_files
from vaekit.models.autoencoder_kl import CODEBOOK, from_diffusers_state
from vaekit.models.base import VAE
from vaekit.models.diffusers_adapter import CLASSES, class_arguments
from vaekit.schema import MAX_CONFIG_BYTES, read_bounded

KL_CLASSES = ("AutoencoderKL", "VQModel")  # model.arch autoencoder-kl
SUPPORTED_CLASSES = KL_CLASSES + tuple(CLASSES)  # the diffusers classes read and written whole


def is_diffusers_folder(folder: Path) -> bool:
    """A diffusers model folder: ``config.json`` beside diffusers weights, or naming a class vaekit reads."""
    if not (folder / "config.json").is_file():
        return False
    if any(folder.glob("diffusion_pytorch_model*")):
        return True  # then a damaged config.json is reported as such, not as "no model here"
    try:
        return read_diffusers_config(folder).get("_class_name") in SUPPORTED_CLASSES
    except ConfigError:
        return False


def read_diffusers_config(folder: Path) -> dict:
    """``folder/config.json`` as a mapping (at most 1 MiB, UTF-8 JSON), or one ``ConfigError``."""
    path = folder / "config.json"
    try:
        raw = json.loads(read_bounded(path, MAX_CONFIG_BYTES).decode("utf-8"))
    except (OSError, ValueError, RecursionError) as err:  # unreadable, too large, not UTF-8, not JSON, too deep
        raise ConfigError(f"{path}: not a readable diffusers config ({err})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got a {type(raw).__name__}")
    return raw


def config_from_diffusers(folder: Path) -> Config:
    """A vaekit config for the autoencoder saved in ``folder`` (diffusers' layout); every value is
    checked like any vaekit setting, and a message names the file and the setting."""
    path = folder / "config.json"
    raw = read_diffusers_config(folder)
    kind = raw.get("_class_name", "AutoencoderKL")
    if kind not in SUPPORTED_CLASSES:
        raise ConfigError(
            f"{path}: a diffusers {kind}; vaekit reads and trains {', '.join(SUPPORTED_CLASSES)} folders whole, "
            f"and would lose what a {kind} holds beyond them"
        )
    settings = _kl_settings(path, raw, kind) if kind in KL_CLASSES else _adapter_settings(raw, kind)
    try:
        return Config().with_overrides(settings)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def _adapter_settings(raw: dict[str, Any], kind: str) -> dict[str, Any]:
    """``model.arch: diffusers`` with the class's own config; the image size it was made for."""
    spec = CLASSES[kind]
    size = raw.get("sample_size") or raw.get("image_size") or 256
    if kind == "AutoencoderRAE" and not raw.get("image_size"):
        size = raw.get("patch_size", 16) * raw.get("encoder_input_size", 224) // raw.get("encoder_patch_size", 14)
    channels = raw.get("in_channels", raw.get("input_channels", raw.get("num_channels", 3)))
    return {
        "model.arch": "diffusers",
        "model.latent": spec.latent,
        "model.diffusers.class_name": kind,
        "model.diffusers.config": class_arguments(kind, raw),
        "likelihood.name": "laplace",
        "likelihood.output": spec.output,
        "data.image_size": size[0] if isinstance(size, list | tuple) and size else size,
        "data.channels": channels,
    }


def _kl_settings(path: Path, raw: dict[str, Any], kind: str) -> dict[str, Any]:
    """``model.arch: autoencoder-kl`` settings of an ``AutoencoderKL`` or ``VQModel`` config."""
    if "block_out_channels" not in raw:
        raise ConfigError(f"{path}: no 'block_out_channels' (is it an AutoencoderKL config?)")
    blocks = raw.get("down_block_types", [])
    unsupported = [t for t in blocks if t != "DownEncoderBlock2D"] if isinstance(blocks, list) else [blocks]
    if unsupported:
        raise ConfigError(f"{path}: block types {unsupported} are not supported (DownEncoderBlock2D only)")
    settings = {
        "model.arch": "autoencoder-kl",
        "likelihood.name": "laplace",
        "likelihood.output": "signed",
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
    if kind == "VQModel":
        if raw.get("vq_embed_dim") not in (None, raw.get("latent_channels", 3)) or raw.get("norm_type") == "spatial":
            raise ConfigError(
                f"{path}: a VQModel with vq_embed_dim != latent_channels or spatial norm is not supported"
            )
        settings |= {
            "model.latent": "vq",
            "model.vq.codebook_size": raw.get("num_vq_embeddings", 256),
            "model.autoencoder_kl.latent_channels": raw.get("latent_channels", 3),
            "model.latent_dim": raw.get("latent_channels", 3),
            "data.image_size": raw.get("sample_size", 32),
        }
    return settings


def load_diffusers_weights(model: VAE, folder: Path) -> None:
    """The weights of a diffusers folder into the model its config built (its likelihood and
    latent kind keep their own unless the folder holds them, as a VQModel's codebook)."""
    weights = read_safetensors_files(folder, "diffusion_pytorch_model*.safetensors", str(folder))
    translate = getattr(model, "from_diffusers_state", from_diffusers_state)
    weights = translate(weights)
    own = model.state_dict()
    kept = ("likelihood.", "bottleneck.")  # a VQModel's codebook excepted: that the folder must hold
    missing = sorted(k for k in own if k not in weights and (k == CODEBOOK or not k.startswith(kept)))
    unexpected = sorted(set(weights) - set(own))
    wrong = sorted(k for k in weights if k in own and own[k].shape != weights[k].shape)
    if missing or unexpected or wrong:
        raise ValueError(
            f"{folder}: weights do not fit the config beside them (e.g. {(missing or unexpected or wrong)[:3]})"
        )
    model.load_state_dict({**own, **weights})


def diffusers_scaling(folder: Path) -> dict[str, Any]:
    """The latent statistics a diffusers folder's config carries (what ``export`` writes back)."""
    raw = read_diffusers_config(folder)
    scaling = {key: raw.get(key) for key in ("scaling_factor", "shift_factor", "latents_mean", "latents_std")}
    return {key: value for key, value in scaling.items() if value is not None}
