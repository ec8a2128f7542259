"""The negative ELBO of a dataset, in nats per image (and bits per dimension)."""

from __future__ import annotations

import math

import numpy as np
import torch

from vaekit.data.loader import BatchLoader
from vaekit.models.base import VAE

VALIDATION_METRICS = ("neg_elbo", "nll", "kl", "bits_per_dim")  # what evaluate_elbo reports


@torch.no_grad()
def evaluate_elbo(model: VAE, images: np.ndarray, batch_size: int = 256, seed: int = 0) -> dict[str, float]:
    """Mean negative ELBO, NLL and KL (nats per image) of uint8 ``images`` under ``model``.

    Stochastic parts (dynamic binarisation, the posterior sample) use a fixed seed inside a forked
    random state, so the result is repeatable and the caller's random stream is untouched.
    """
    device = next(model.parameters()).device
    totals = {"nll": 0.0, "kl": 0.0}
    loader = BatchLoader(images, batch_size, shuffle=False, drop_last=False, device=device)
    with model.evaluating(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for batch in loader:
            target = model.likelihood.prepare(batch, stochastic=True)
            out = model(target)
            totals["nll"] += model.likelihood.nll(out.params, target).sum().item()
            totals["kl"] += out.posterior.kl().float().sum().item()
    n = len(images)
    nll, kl = totals["nll"] / n, totals["kl"] / n
    bits = bits_per_dim(nll + kl, images.shape[1:], model.likelihood.discrete)
    return {"neg_elbo": nll + kl, "nll": nll, "kl": kl, "bits_per_dim": bits}


def bits_per_dim(nats: float, image_shape: tuple[int, ...], discrete: bool) -> float:
    """Nats per image as bits per pixel-channel. A continuous density on [0, 1] is moved to the
    0..255 scale of 8-bit data (+8 bits), so the numbers compare with discrete models'."""
    dims = int(np.prod(image_shape))
    return nats / (dims * math.log(2)) + (0.0 if discrete else 8.0)
