"""Trained models from disk or the Hub: a run, a model folder, a checkpoint, a Hub id or a diffusers
``AutoencoderKL`` folder, as a ``VAE`` in eval mode; and what ``vaekit info`` says of one."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any

import torch

from vaekit.config import Config, ConfigError
from vaekit.device import resolve_device
from vaekit.io.card import model_info, named_sampler, read_info, reported
from vaekit.io.checkpoints import MODEL_FILE, CheckpointError, list_checkpoints, load_weights, require_fit
from vaekit.io.hub import HUB_PREFIX, hub_id, hub_snapshot
from vaekit.io.run_folder import RunDir
from vaekit.models import VAE, create_model
from vaekit.models.diffusers_folders import (
    config_from_diffusers,
    diffusers_scaling,
    is_diffusers_folder,
    load_diffusers_weights,
)
from vaekit.models.samplers import attach_sampler
from vaekit.version import __version__


def load(
    path: str | Path,
    device: str | torch.device = "cpu",
    *,
    trust_code: bool = False,
    modules: tuple[torch.nn.Module, torch.nn.Module] | None = None,
) -> VAE:
    """A trained model in eval mode from a run directory, a model folder, a checkpoint or a Hub id.

    ``model.config`` is its config and ``model.info`` what its folder says about it (versions, data,
    final metrics). ``trust_code`` allows importing code the config names (plug-ins, the classes of
    a ``from_modules`` model); or give that model's ``modules=(encoder, decoder)`` yourself.
    """
    device = resolve_device(device, key="device")  # a GPU this machine lacks: one line, before any work
    repo = hub_id(str(path))
    if repo is not None:
        path = hub_snapshot(repo)
    if is_diffusers_folder(Path(path)) or is_diffusers_folder(Path(path) / "vae"):
        return _load_diffusers(Path(path), device)
    folder = model_folder(path)
    config_file = folder / "config.yaml"
    if not config_file.is_file():
        config_file = folder.parent.parent / "config.yaml"  # a checkpoint folder inside a run
    if not config_file.is_file():
        raise CheckpointError(f"{path}: no config.yaml next to the weights")
    config = Config.from_yaml(config_file)
    _require_fit_before_building(config, folder / MODEL_FILE, trust_code, modules)
    model = create_model(config, trust_code=trust_code, modules=modules).to(device)
    load_weights(model, folder)
    model.config = config
    model.info = read_info(folder)
    _attach_named_sampler(model, folder)
    return model.eval()


def _attach_named_sampler(model: VAE, folder: Path) -> None:
    """The sampler the model card names (fitted at the end of training) attached; one that cannot be
    read is said in a warning, and new images then come from the prior."""
    name = named_sampler(model.info or {})
    if name in (None, "prior"):
        return
    try:
        attach_sampler(model, folder, str(name))
    except (ConfigError, ValueError, LookupError) as err:
        warnings.warn(
            f"{folder}: its sampler {name} cannot be used ({err}); new images come from the prior", stacklevel=3
        )


def _require_fit_before_building(config: Config, weights: Path, trust_code: bool, modules) -> None:
    """The model ``config`` describes, built on the meta device (no memory), held against the weight
    file's header: a shared config asking for a model its weights do not hold is refused before
    anything is allocated. User networks that cannot be built on the meta device are checked after."""
    try:
        with torch.device("meta"):
            shaped = create_model(config, trust_code=trust_code, modules=modules)
    except (RuntimeError, NotImplementedError, TypeError):  # user code that computes with tensors
        return
    require_fit(shaped, weights)


def with_pretrained_architecture(config: Config, source: str) -> Config:
    """``config`` with the model and likelihood of the pretrained model at ``source`` (and init set)."""
    pretrained = load(source).config
    merged = config.to_dict()
    merged["model"], merged["likelihood"] = pretrained.to_dict()["model"], pretrained.to_dict()["likelihood"]
    merged["data"]["channels"] = pretrained.data.channels
    merged["train"]["init"] = source
    return Config.from_dict(merged)


def load_initial_weights(model: VAE, source: str) -> None:
    """``train.init``: weights from a vaekit run / model folder / Hub id or a diffusers VAE folder."""
    pretrained = load(source)
    own, theirs = model.state_dict(), pretrained.state_dict()
    mismatched = sorted(k for k in own if k not in theirs or own[k].shape != theirs[k].shape)
    unexpected = sorted(set(theirs) - set(own))
    if mismatched or unexpected:
        raise ConfigError(
            f"train.init: {source} does not fit this model (e.g. {(mismatched or unexpected)[:3]}); "
            "use its architecture settings (vaekit config RUN)"
        )
    model.load_state_dict(theirs)


def _load_diffusers(path: Path, device) -> VAE:
    """A diffusers autoencoder folder (or a pipeline folder's ``vae/``) as a vaekit model."""
    folder = path if is_diffusers_folder(path) else path / "vae"
    config = config_from_diffusers(folder)
    model = create_model(config)
    load_diffusers_weights(model, folder)
    model.config = config
    model.info = {
        "source": "diffusers",
        "class": config.model.diffusers.class_name if config.model.arch == "diffusers" else "AutoencoderKL",
        "latent_scaling": diffusers_scaling(folder),
    }
    return model.to(device).eval()


def card_folder(path: str | Path) -> Path | None:
    """The model folder whose card vaekit writes to for ``path`` (a run or model folder), or None
    (a diffusers folder, a Hub id, a checkpoint: nothing of vaekit's to record into)."""
    if hub_id(str(path)) is not None:
        return None
    try:
        folder = model_folder(path)
    except CheckpointError:
        return None
    return folder if (folder / MODEL_FILE).is_file() else None


def model_folder(path: str | Path) -> Path:
    """Where a run's (or model folder's) weights and the files saved beside them live."""
    path = Path(path)
    if (path / "model.safetensors").is_file():
        return path
    run = RunDir(path)
    if (run.model / "model.safetensors").is_file():
        return run.model
    checkpoints = list_checkpoints(run.checkpoints)
    if checkpoints:
        raise CheckpointError(
            f"{path}: the run did not finish (no model/); continue it with vaekit train --resume {path}, "
            f"or load a checkpoint explicitly: {checkpoints[-1]}"
        )
    if not path.exists():
        hint = f" (a Hub model is named {HUB_PREFIX}{path.as_posix()})" if len(path.parts) == 2 else ""
        raise CheckpointError(f"{path}: no such folder{hint}")
    raise CheckpointError(f"{path}: no trained model here (looked for model/, checkpoints/ and model.safetensors)")


def describe(path: str, trust_code: bool = False) -> dict[str, Any]:
    """``vaekit info``: what a run, model folder or Hub id holds."""
    model = load(path, trust_code=trust_code)
    info = dict(model.info) if model.info else model_info(model.config, model, None, {})
    run = RunDir(Path(path))
    if run.metrics.is_file():
        with open(run.metrics, newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if row.get("step", "").isdigit()]
        if rows:
            info["steps"] = info.get("steps") or int(rows[-1]["step"])
            val = [row for row in rows if row.get("split") == "val"]
            if val and not info.get("final_metrics"):
                info["final_metrics"] = reported({k: float(v) for k, v in val[-1].items() if v and _is_number(v)})
    info["loaded_with_vaekit"] = __version__
    return info


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
