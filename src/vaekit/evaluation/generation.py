"""Sample quality from features: FID (Fréchet distance), KID (unbiased MMD^2 with the cubic
polynomial kernel, averaged over random subsets, as in Bińkowski et al. 2018), precision / recall
(Kynkäänniemi et al. 2019) and density / coverage (Naeem et al. 2020) from k-nearest-neighbour balls."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

import numpy as np
import torch

from vaekit.data.progress import JobProgress
from vaekit.optional import require


@torch.no_grad()
def extract_features(
    network: Callable[[torch.Tensor], torch.Tensor], batches: Iterable[torch.Tensor], label: str = "", total: int = 0
) -> np.ndarray:
    """Features of every batch of [0, 1] images, stacked as float64 ``(N, D)``; with ``label``, the
    pass shows its progress over ``total`` images."""
    device = next(network.parameters()).device if isinstance(network, torch.nn.Module) else "cpu"
    features = []
    with JobProgress(label, total, says_done=False) if label else contextlib.nullcontext() as progress:
        for batch in batches:
            features.append(network(batch.to(device)).double().cpu().numpy())
            if progress is not None:
                progress.advance(len(batch))
    return np.concatenate(features)


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
) -> tuple[float, float | None]:
    """KID: mean and standard deviation over subsets of the unbiased MMD^2 estimate with
    k(x, y) = (x.y / D + 1)^3. The spread is None when every subset is the whole of both sets (it
    would measure nothing but rounding), and one subset is then enough."""
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(a), len(b))
    if m == len(a) == len(b):
        n_subsets = 1
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
    return float(np.mean(estimates)), (float(np.std(estimates)) if len(estimates) > 1 else None)


def nearest_radii(points: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Each point's distance to its ``k``-th nearest other point of the same set."""
    radii = [torch.cdist(part, points).topk(k + 1, largest=False).values[:, -1] for part in points.split(chunk)]
    return torch.cat(radii)


def precision_recall_density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5, chunk: int = 1024) -> dict:
    """Kynkäänniemi et al.'s precision (the share of samples inside some real image's k-NN ball) and
    recall (the share of real images inside some sample's ball), Naeem et al.'s density (how many
    real balls hold a sample, over k: 1 when samples sit as densely as the data) and coverage (the
    share of real balls that hold a sample), in the same features as FID. Memory: a chunk of
    distances at a time."""
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision / recall with k={k} needs more than {k} real images and samples")
    r, f = torch.from_numpy(np.asarray(real)).double(), torch.from_numpy(np.asarray(fake)).double()
    real_radii, fake_radii = nearest_radii(r, k, chunk), nearest_radii(f, k, chunk)
    inside_real = torch.zeros(len(f), dtype=torch.long)  # per sample: the real balls holding it
    covered = torch.zeros(len(r), dtype=torch.bool)  # per real image: a sample in its ball
    recalled = torch.zeros(len(r), dtype=torch.bool)  # per real image: inside some sample's ball
    for start in range(0, len(f), chunk):
        distances = torch.cdist(f[start : start + chunk], r)  # (samples, real)
        within = distances <= real_radii[None, :]
        inside_real[start : start + chunk] = within.sum(1)
        covered |= within.any(0)
        recalled |= (distances <= fake_radii[start : start + chunk, None]).any(0)
    return {
        "precision": float((inside_real > 0).double().mean()),
        "recall": float(recalled.double().mean()),
        "density": float(inside_real.double().sum() / (k * len(f))),
        "coverage": float(covered.double().mean()),
        "k": k,
    }
