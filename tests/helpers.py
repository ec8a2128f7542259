"""Helpers for tests: tiny configs and the real datasets beside the project."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vaekit.config import Config

SHARED_DATA = Path(os.environ.get("VAEKIT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def shared_data(name: str) -> Path:
    """A folder of ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real dataset {name!r} not found at {path} (set VAEKIT_SHARED_DATA to its parent folder)")
    return path


def tiny_config(**overrides) -> Config:
    """A model and run small enough to train in about a second on a CPU."""
    config = Config().with_overrides(
        {
            "data.source": "shapes",
            "data.image_size": 16,
            "data.num_images": 256,
            "data.channels": 3,
            "model.latent_dim": 4,
            "model.channels": [8, 16],
            "likelihood.name": "gaussian",
            "likelihood.scale": 0.1,
            "train.epochs": 2,
            "train.batch_size": 32,
            "train.log_every": 3,
            "train.checkpoint_every": 4,
            "train.grid_size": 8,
            "train.threads": 1,
        }
    )
    return config.with_overrides(overrides)
