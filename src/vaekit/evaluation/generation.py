"""Sample quality from feature statistics: FID (Fréchet distance) and KID (unbiased MMD^2 with the
cubic polynomial kernel, averaged over random subsets, as in Bińkowski et al. 2018)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from vaekit.optional import require


@torch.no_grad()
def extract_features(network: Callable[[torch.Tensor], torch.Tensor], batches: Iterable[torch.Tensor]) -> np.ndarray:
    """Features of every batch of [0, 1] images, stacked as float64 ``(N, D)``."""
    device = next(network.parameters()).device if isinstance(network, torch.nn.Module) else "cpu"
    return np.concatenate([network(batch.to(device)).double().cpu().numpy() for batch in batches])


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FID between two feature sets ``(N, D)``: |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2)."""
    linalg = require("scipy.linalg", "eval", "FID")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():  # singular product: regularise as pytorch-fid does
        offset = np.eye(len(cov_a)) * 1e-6
        root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    root = root.real
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root))


def kernel_inception_distance(
    a: np.ndarray, b: np.ndarray, n_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID: mean and standard deviation over subsets of the unbiased MMD^2 estimate with
    k(x, y) = (x.y / D + 1)^3."""
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(a), len(b))
    dim = a.shape[1]
    estimates = []
    for _ in range(n_subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        k_xx = (x @ x.T / dim + 1) ** 3
        k_yy = (y @ y.T / dim + 1) ** 3
        k_xy = (x @ y.T / dim + 1) ** 3
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        estimates.append(within - 2 * k_xy.mean())
    return float(np.mean(estimates)), float(np.std(estimates))
