"""Soft-IntroVAE's 2-D metrics, pinned on cases whose answers are known in closed form."""

import math

import numpy as np
import pytest
import torch

from vaekit.config import LikelihoodConfig
from vaekit.evaluation.density2d import (
    evaluation_grid,
    grid_normalized_elbo,
    histogram,
    histogram_jsd,
    histogram_kl,
    point_losses,
)
from vaekit.likelihoods import create_likelihood
from vaekit.models import ModulesVAE


class _Fixed(torch.nn.Module):
    """An encoder returning ``(x * mean_gain, logvar)`` for every point (no parameters to train)."""

    def __init__(self, mean_gain: float, logvar: float) -> None:
        super().__init__()
        self.mean_gain, self.logvar = mean_gain, logvar

    def forward(self, x):
        return x * self.mean_gain, torch.full_like(x, self.logvar)


def _model(encoder: torch.nn.Module, decoder: torch.nn.Module) -> ModulesVAE:
    likelihood = create_likelihood(LikelihoodConfig(name="gaussian", output="identity"))
    return ModulesVAE(encoder, decoder, (2,), likelihood, (2,))


def test_the_grid_spans_the_square_with_both_ends():
    grid = evaluation_grid(2.0, 5)
    assert grid.shape == (25, 2)
    assert grid.min().item() == -2.0 and grid.max().item() == 2.0
    assert torch.equal(grid[1], torch.tensor([-2.0, -1.0]))


class _Zero(torch.nn.Module):
    def forward(self, z):
        return torch.zeros_like(z)


def test_point_loss_is_kl_plus_squared_error_of_the_mean_reconstruction():
    # encoder mean = x, logvar = 0 -> KL = |x|^2 / 2; decoder = 0 -> squared error = |x|^2
    model = _model(_Fixed(1.0, 0.0), _Zero())
    x = torch.tensor([[1.0, 2.0], [0.0, -3.0]])
    assert torch.allclose(point_losses(model, x), torch.tensor([7.5, 13.5], dtype=torch.float64))


def test_a_model_with_zero_loss_on_the_data_scores_zero():
    # mean = x, logvar = 0, exact reconstruction: the loss |x|^2 / 2 is 0 on data at the origin
    model = _model(_Fixed(1.0, 0.0), torch.nn.Identity())
    assert grid_normalized_elbo(model, torch.zeros(50, 2), 1.0, grid_points=8) == 0.0


def test_gnelbo_of_a_standard_normal_model_matches_its_closed_form():
    # mean = x, logvar = 0, decoder returns x exactly: loss = |x|^2 / 2, the standard normal's -log density + c
    model = _model(_Fixed(1.0, 0.0), torch.nn.Identity())
    data = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0))
    n, half = 64, 2.0
    axis = torch.linspace(-half, half, n).double()
    on_grid = n * axis.square().sum().item()  # sum over the n x n grid of (x^2 + y^2) / 2
    on_data = 0.5 * data.double().square().sum(1)
    expected = (on_data / (on_grid + on_data.sum())).mean().item()
    # the model computes in float32, the expectation in float64
    assert grid_normalized_elbo(model, data, half, grid_points=n) == pytest.approx(expected, rel=1e-6)


def test_histograms_are_densities_over_the_square():
    points = torch.rand(4000, 2, generator=torch.Generator().manual_seed(0)) * 4 - 2
    counts = histogram(points, 2.0, bins=10)
    assert counts.shape == (10, 10)
    assert counts.sum() * (4 / 10) ** 2 == pytest.approx(1.0)


def test_kl_and_jsd_are_zero_for_the_same_points():
    points = torch.randn(5000, 2, generator=torch.Generator().manual_seed(1))
    # zero up to the 1e-14 floor inside the logarithm
    assert histogram_kl(points, points, 2.0) == pytest.approx(0.0, abs=1e-9)
    assert histogram_jsd(points, points, 2.0) == pytest.approx(0.0, abs=1e-9)


def test_kl_and_jsd_match_a_hand_computed_two_bin_case():
    # range [-1, 1], 2x2 bins of area 1: data all in bin (0, 0) -> density 1 there;
    # samples half in bin (0, 0), half in bin (1, 1) -> density 0.5 in each
    data = torch.full((10, 2), -0.5)
    samples = torch.cat([torch.full((5, 2), -0.5), torch.full((5, 2), 0.5)])
    floor, rows = 1e-14, 2
    kl = (1.0 * (math.log(1.0) - math.log(0.5 + floor))) / rows
    assert histogram_kl(data, samples, 1.0, bins=2) == pytest.approx(kl, rel=1e-12)
    m = {(0, 0): 0.75, (1, 1): 0.25}
    p = {(0, 0): 1.0, (1, 1): 0.0}
    q = {(0, 0): 0.5, (1, 1): 0.5}
    kl_m_p = sum(m[k] * (math.log(m[k]) - math.log(p[k] + floor)) for k in m) / rows
    kl_m_q = sum(m[k] * (math.log(m[k]) - math.log(q[k] + floor)) for k in m) / rows
    assert histogram_jsd(data, samples, 1.0, bins=2) == pytest.approx(0.5 * (kl_m_p + kl_m_q), rel=1e-12)


def test_missing_a_mode_costs_the_floor_in_kl():
    data = torch.cat([torch.full((50, 2), -0.5), torch.full((50, 2), 0.5)])
    samples = torch.full((100, 2), -0.5)  # the sample histogram is 0 where half the data is
    value = histogram_kl(data, samples, 1.0, bins=2)
    expected = (0.5 * math.log(0.5 / 1.0) + 0.5 * (math.log(0.5) - math.log(1e-14))) / 2
    assert value == pytest.approx(expected, rel=1e-12)
    assert value > 5  # the floor makes a missed mode expensive, as in the official numbers
    assert np.isfinite(histogram_jsd(data, samples, 1.0, bins=2))


def test_gnelbo_leaves_the_model_in_the_mode_it_found():
    model = _model(_Fixed(1.0, 0.0), torch.nn.Identity())
    data = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    for mode in (True, False):
        model.train(mode)
        grid_normalized_elbo(model, data, half_width=3.0, grid_points=64)
        assert model.training is mode
