"""Aligning latents to a frozen vision model's patch features (VA-VAE, REPA-E), with a tiny
randomly initialised DINOv2 from transformers: nothing is downloaded."""

from __future__ import annotations

import csv

import pytest
import torch
from safetensors.torch import load_file

from tests import networks
from tests.helpers import tiny_config
from vaekit.config import ConfigError
from vaekit.engine.precision import Precision
from vaekit.io.checkpoints import STATE_FILE
from vaekit.models import ARCHITECTURES, create_model
from vaekit.objectives import create_objective
from vaekit.objectives.alignment import repa_loss, vf_loss
from vaekit.training.trainer import Trainer

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_dinov2(tmp_path_factory):
    return networks.tiny_dinov2(tmp_path_factory.mktemp("dinov2"))  # the config alone: random weights


def aligned_config(network, **overrides):
    return tiny_config(**{
        "model.arch": "autoencoder-kl", **ARCHITECTURES.get("autoencoder-kl").tiny,
        "objective.alignment.enabled": True, "objective.alignment.network": str(network),
        "objective.alignment.random_weights": True, "objective.alignment.image_size": 32, **overrides,
    })  # fmt: skip


def test_the_vf_loss_is_zero_for_aligned_latents_and_counts_both_margins():
    features = torch.randn(2, 8, 3, 3)
    assert vf_loss(3 * features, features, 0.5, 0.25).item() == pytest.approx(0.0, abs=1e-6)
    assert repa_loss(3 * features, features).item() == pytest.approx(-1.0, abs=1e-6)
    opposite = vf_loss(-features, features, 0.5, 0.25).item()  # cosine -1 everywhere: 1 - 0.5 + 1 = 1.5,
    assert opposite == pytest.approx(1.5, abs=1e-5)  # and pairwise similarities unchanged: no distance term
    flat = torch.ones(2, 8, 3, 3)  # every position alike: the distance term sees what the features do not
    assert vf_loss(flat, features, 2.0, 0.0).item() == pytest.approx(
        (torch.nn.functional.normalize(features.flatten(2), dim=1).transpose(1, 2)
         @ torch.nn.functional.normalize(features.flatten(2), dim=1)).sub(1).abs().mean().item(), rel=1e-5
    )  # fmt: skip


def test_training_with_a_tiny_random_dinov2_lowers_the_alignment_loss(tmp_path, tiny_dinov2):
    config = aligned_config(tiny_dinov2, **{"train.epochs": 6, "train.log_every": 7, "train.lr": 3e-3})
    run = Trainer(config, tmp_path / "run").fit()
    with open(run / "metrics.csv", newline="") as handle:
        losses = [float(row["align_loss"]) for row in csv.DictReader(handle) if row["split"] == "train"]
    assert losses[-1] < 0.85 * losses[0], losses
    checkpoint = sorted((run / "checkpoints").iterdir())[-1]
    state = torch.load(checkpoint / STATE_FILE, weights_only=True)
    assert "alignment_projection" in state["optimizers"]  # resumed with the projection it had learned
    assert not any("projection" in key for key in load_file(str(run / "model" / "model.safetensors")))


def test_models_without_spatial_latents_are_refused(tiny_dinov2):
    config = tiny_config(**{"objective.alignment.enabled": True, "objective.alignment.network": str(tiny_dinov2),
                            "objective.alignment.random_weights": True})  # fmt: skip
    with pytest.raises(ConfigError, match="needs spatial latents"):
        create_objective(create_model(config), config, Precision("fp32", torch.device("cpu")))
