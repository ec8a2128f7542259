"""Soft-IntroVAE's metrics for 2-D densities, computed as its public evaluation code does.

- gnELBO (grid-normalised ELBO): the per-point loss ``KL(q(z|x) || p(z)) + ||x - dec(mean)||^2``
  (deterministic reconstruction, beta 1) of held-out data points, each divided by the sum of that
  loss over the data points and a ``points x points`` grid over the evaluation square; the mean
  over the data points. Lower is better: the model's loss is low on the data relative to the
  rest of the plane.
- KL and JSD between 2-D histograms (``bins`` x ``bins`` over the square, ``density=True``) of
  data and of prior samples, with the code's floor of 1e-14 inside the logarithm and its
  ``batchmean`` reduction (the sum over bins divided by ``bins``). KL is KL(data || model); the
  code's "JSD" is (KL(M || data) + KL(M || model)) / 2 with M the mixture, and is reproduced so.
"""

from __future__ import annotations

import numpy as np
import torch

FLOOR = 1e-14


def point_losses(model, points: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """``KL + squared error`` of each point under ``model`` (z = posterior mean), float64."""
    losses = []
    with torch.no_grad():
        for chunk in points.split(batch_size):
            posterior = model.encode(chunk)
            kl = posterior.kl()
            reconstruction = model.likelihood.location(model.decode(posterior.mean)).float()
            error = (reconstruction - chunk).square().flatten(1).sum(1)
            losses.append((kl + error).double())
    return torch.cat(losses)


def evaluation_grid(half_width: float, points: int = 1024) -> torch.Tensor:
    """The ``points x points`` grid over [-half_width, half_width]^2 as (points^2, 2)."""
    axis = torch.linspace(-half_width, half_width, points)
    xx, yy = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xx.flatten(), yy.flatten()], dim=1)


def grid_normalized_elbo(model, data: torch.Tensor, half_width: float, grid_points: int = 1024) -> float:
    """gnELBO of ``model`` on ``data`` (the official evaluation uses 100 x 128 points)."""
    was_training = model.training
    model.eval()
    on_grid = point_losses(model, evaluation_grid(half_width, grid_points))
    on_data = point_losses(model, data)
    model.train(was_training)
    return (on_data / (on_grid.sum() + on_data.sum())).mean().item()


def histogram(points: torch.Tensor, half_width: float, bins: int = 100) -> np.ndarray:
    values = points.detach().cpu().double().numpy()
    square = [[-half_width, half_width], [-half_width, half_width]]
    counts, _, _ = np.histogram2d(values[:, 0], values[:, 1], bins=bins, range=square, density=True)
    return counts


def _kl(log_of: np.ndarray, target: np.ndarray) -> float:
    """``F.kl_div(log_of, target, reduction='batchmean')``: sum target (log target - log_of) / rows,
    with 0 log 0 = 0."""
    inside = np.where(target > 0, target * (np.log(np.where(target > 0, target, 1.0)) - log_of), 0.0)
    return float(inside.sum() / target.shape[0])


def histogram_kl(data: torch.Tensor, samples: torch.Tensor, half_width: float, bins: int = 100) -> float:
    """KL(data histogram || sample histogram), the official way."""
    p, q = histogram(data, half_width, bins), histogram(samples, half_width, bins)
    return _kl(np.log(q + FLOOR), p)


def histogram_jsd(data: torch.Tensor, samples: torch.Tensor, half_width: float, bins: int = 100) -> float:
    """The official "JSD": (KL(M || data) + KL(M || samples)) / 2, M = (data + samples) / 2."""
    p, q = histogram(data, half_width, bins), histogram(samples, half_width, bins)
    mixture = 0.5 * (p + q)
    return 0.5 * (_kl(np.log(p + FLOOR), mixture) + _kl(np.log(q + FLOOR), mixture))
