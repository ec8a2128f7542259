"""Helpers for tests: tiny configs and the real datasets beside the project."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

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
            "train.fit_sampler": False,  # tests/training/test_sampler_fit.py fits one
        }
    )
    return config.with_overrides(overrides)


def write_idx(path, array, compress=True):
    """An IDX file (gzipped unless told otherwise) holding ``array`` as uint8."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


def fake_mnist(folder, n_train=6, n_test=4):
    """A folder laid out like MNIST, with random images and labels 0..9 in turn."""
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28)))
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(n_train) % 10)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n_test, 28, 28)))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(n_test) % 10)
    return folder


def correlated_tokens(n: int, seed: int = 0) -> torch.Tensor:
    """Tokens of 4 channels that mostly follow one direction (as early encoders' channels do)."""
    generator = torch.Generator().manual_seed(seed)
    common = torch.randn(n, 1, generator=generator)
    return (common * torch.tensor([1.0, 0.9, -0.8, 0.7]) + 0.3 * torch.randn(n, 4, generator=generator) + 3.0)[None]
