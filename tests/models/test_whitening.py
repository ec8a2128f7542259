"""Decorrelated batch normalisation: centred, decorrelated, unit-variance channels from the batch in
training, from running averages after."""

from __future__ import annotations

import torch

from tests.helpers import correlated_tokens
from vaekit.models.whitening import Whitening


def test_whitening_centres_and_decorrelates_from_the_batch_in_training_and_running_averages_after():
    whitening = Whitening(4, momentum=0.5).train()
    tokens = correlated_tokens(4000)
    white = whitening(tokens)[0]
    torch.testing.assert_close(white.mean(0), torch.zeros(4), atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.cov(white.T), torch.eye(4), atol=2e-3, rtol=0)  # eps: 1e-4
    for seed in range(1, 20):
        whitening(correlated_tokens(4000, seed))
    whitening.eval()
    torch.testing.assert_close(torch.cov(whitening(tokens)[0].T), torch.eye(4), atol=0.1, rtol=0)
    running = whitening.running_covariance.clone()
    whitening(correlated_tokens(10, seed=99))
    assert torch.equal(whitening.running_covariance, running)  # eval: the statistics stay


def test_a_single_token_in_training_is_whitened_by_the_running_statistics_it_cannot_estimate():
    whitening = Whitening(4).train()
    for seed in range(5):
        whitening(correlated_tokens(500, seed))
    covariance, mean = whitening.running_covariance.clone(), whitening.running_mean.clone()
    token = correlated_tokens(1, seed=7)
    factor = torch.linalg.cholesky(covariance + whitening.eps * torch.eye(4))
    expected = torch.linalg.solve_triangular(factor, (token[0] - mean).T, upper=False).T
    torch.testing.assert_close(whitening(token)[0], expected)
    assert torch.equal(whitening.running_covariance, covariance)  # one token moves no statistics
