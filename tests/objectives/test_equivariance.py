"""EQ-VAE's term: decoding a transformed latent should give the transformed image."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.helpers import tiny_config
from vaekit.config import ConfigError
from vaekit.engine.precision import Precision
from vaekit.models import ARCHITECTURES, VAE, create_model
from vaekit.objectives import StepInfo, create_objective
from vaekit.objectives.equivariance import EquivarianceTerm, Transform

ALWAYS = {"objective.equivariance.enabled": True, "objective.equivariance.probability": 1.0}


class PointwiseEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return self.conv(x), torch.zeros(len(x), 4, *x.shape[-2:])


def spatial_model(decoder: nn.Module) -> VAE:
    """16x16x4 latents of 16 px images; the likelihood's image is the decoder's output itself."""
    torch.manual_seed(0)
    return VAE.from_modules(PointwiseEncoder(), decoder, (4, 16, 16), "gaussian", output="identity")


def error_of(model: VAE, transform: Transform) -> float:
    term = EquivarianceTerm(model, tiny_config(**ALWAYS, **{"data.image_size": 16}))
    x = torch.rand(2, 3, 16, 16)
    out = model(x)
    return term.transformed_loss(out.z, out.params, x, transform)[1].item()


@pytest.mark.parametrize("transform", [Transform(size=(8, 8)), Transform(size=(12, 12)), Transform(quarter_turns=1)])
def test_a_pointwise_linear_decoder_commutes_with_every_transform(transform):
    assert error_of(spatial_model(nn.Conv2d(4, 3, 1)), transform) < 1e-10


@pytest.mark.parametrize("transform", [Transform(size=(8, 8)), Transform(quarter_turns=1)])
def test_a_decoder_with_a_spatial_kernel_does_not(transform):
    assert error_of(spatial_model(nn.Conv2d(4, 3, 3, padding=1)), transform) > 1e-4


def test_transforms_are_a_pure_function_of_the_step_and_follow_the_options():
    config = tiny_config(**{"model.arch": "autoencoder-kl", **ARCHITECTURES.get("autoencoder-kl").tiny,
                            **ALWAYS, "objective.equivariance.rotations": False,
                            "objective.equivariance.scales": [0.5]})  # fmt: skip
    term = EquivarianceTerm(create_model(config), config)
    _, height, width = create_model(config).latent_shape
    assert {term.draw(step) for step in range(20)} == {Transform(size=(height // 2, width // 2))}
    rare = EquivarianceTerm(create_model(config), config.with_overrides({"objective.equivariance.probability": 0.3}))
    drawn = [rare.draw(step) is not None for step in range(400)]
    assert drawn == [rare.draw(step) is not None for step in range(400)] and 0.2 < sum(drawn) / 400 < 0.4


def test_the_elbo_adds_the_weighted_nll_of_the_transformed_image_and_logs_both_numbers():
    config = tiny_config(**{"model.arch": "autoencoder-kl", **ARCHITECTURES.get("autoencoder-kl").tiny, **ALWAYS,
                            "objective.equivariance.weight": 2.0})  # fmt: skip
    model = create_model(config)
    objective = create_objective(model, config, Precision("fp32", torch.device("cpu")))
    scalars = objective.step(torch.rand(4, 3, 16, 16), StepInfo(0, 0.0, 10))
    assert scalars["eq_loss"] != 0 and scalars["eq_error"] > 0  # a density's NLL: any sign
    assert scalars["loss"].item() == pytest.approx(
        (scalars["nll"] + scalars["kl_weight"] * scalars["kl"] + scalars["eq_loss"]).item(), rel=1e-5
    )


def test_models_without_spatial_latents_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="needs spatial latents"):
        create_objective(
            create_model(tiny_config(**ALWAYS)), tiny_config(**ALWAYS), Precision("fp32", torch.device("cpu"))
        )


def test_another_run_seed_draws_other_transforms():
    config = tiny_config(**{"model.arch": "autoencoder-kl", **ARCHITECTURES.get("autoencoder-kl").tiny, **ALWAYS})
    model = create_model(config)
    draws = {
        seed: [EquivarianceTerm(model, config.with_overrides({"train.seed": seed})).draw(step) for step in range(40)]
        for seed in (0, 1)
    }
    again = [EquivarianceTerm(model, config.with_overrides({"train.seed": 1})).draw(step) for step in range(40)]
    assert draws[0] != draws[1] and draws[1] == again
