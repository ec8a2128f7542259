"""The Python API behind the CLI: train a run, load a trained model, read user images."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vaekit.config import Config, load_preset
from vaekit.data.recipes import prepare
from vaekit.models import VAE, create_model
from vaekit.training.checkpoint import CheckpointError, list_checkpoints, load_weights
from vaekit.training.run_dir import RunDir
from vaekit.training.trainer import Trainer


def train(
    config: Config | str | Path | None = None,
    *,
    preset: str | None = None,
    data: str | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> Path:
    """Train a model and return its run directory.

    ``config`` is a ``Config`` or a YAML file; ``preset`` names a built-in one; ``resume`` continues
    the run in that folder (its saved config, with ``overrides`` applied, e.g. a higher
    ``train.max_steps``).
    """
    if resume is not None:
        run = RunDir(Path(resume))
        if not run.config.is_file():
            raise FileNotFoundError(f"{resume}: not a run directory (no config.yaml)")
        if not list_checkpoints(run.checkpoints):
            raise CheckpointError(f"{resume}: no checkpoint to resume from")
        cfg = Config.from_yaml(run.config)
        out = run.root
    elif isinstance(config, Config):
        cfg = config
    elif config is not None:
        cfg = Config.from_yaml(config)
    else:
        cfg = load_preset(preset) if preset else Config()
    if data is not None:
        overrides = [*overrides, f"data.source={data}"]
    cfg = cfg.with_overrides(list(overrides))
    if out is None:
        out = Path("runs") / f"{preset or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}"
    return Trainer(cfg, out, resume=resume is not None).fit()


def load(path: str | Path, device: str | torch.device = "cpu") -> VAE:
    """A trained model in eval mode from a run directory, its ``model/`` folder or a checkpoint.

    The model's config is available as ``model.config``.
    """
    folder = _weights_folder(Path(path))
    config_file = folder / "config.yaml"
    if not config_file.is_file():
        config_file = folder.parent.parent / "config.yaml"  # a checkpoint folder inside a run
    if not config_file.is_file():
        raise CheckpointError(f"{path}: no config.yaml next to the weights")
    config = Config.from_yaml(config_file)
    model = create_model(config).to(device)
    load_weights(model, folder)
    model.config = config
    return model.eval()


def model_folder(path: str | Path) -> Path:
    """Where a run's (or model folder's) weights and the files saved beside them live."""
    return _weights_folder(Path(path))


def _weights_folder(path: Path) -> Path:
    if (path / "model.safetensors").is_file():
        return path
    run = RunDir(path)
    if (run.model / "model.safetensors").is_file():
        return run.model
    checkpoints = list_checkpoints(run.checkpoints)
    if checkpoints:
        return checkpoints[-1]
    raise CheckpointError(f"{path}: no trained model here (looked for model/, checkpoints/ and model.safetensors)")


def load_images(paths: Sequence[str | Path], config: Config) -> torch.Tensor:
    """User images as a ``(N, C, H, W)`` batch in [0, 1], shaped like the model's training data."""
    arrays = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image.load()
                arrays.append(prepare(image, config.data.image_size, config.data.crop, config.data.channels or 3))
        except (OSError, SyntaxError, ValueError) as err:
            raise ValueError(f"{path}: cannot read image ({err})") from err
    return torch.from_numpy(np.stack(arrays)).float() / 255.0
