"""The negative ELBO of a dataset, in nats per image (and bits per dimension).

Two kinds of number: ``neg_elbo`` / ``nll`` use the likelihood the model was trained with (a
density on [0, 1] for Gaussian and Laplace, so they can be negative and depend on the scale);
``discrete_*`` use the probability of the 8-bit pixel values themselves, the quantity published
tables report and the one that compares across likelihoods (see ``Likelihood.discretised_nll``)."""

from __future__ import annotations

import math

import numpy as np
import torch

from vaekit.data.loader import BatchLoader, within
from vaekit.models.base import VAE

VALIDATION_METRICS = ("neg_elbo", "nll", "kl", "bits_per_dim")  # what evaluate_elbo reports


@torch.no_grad()
def evaluate_elbo(
    model: VAE, images: np.ndarray, batch_size: int = 256, seed: int = 0, seconds: float | None = None
) -> dict[str, float]:
    """Mean negative ELBO, NLL and KL (nats per image) of uint8 ``images`` under ``model``.

    Stochastic parts (dynamic binarisation, the posterior sample) use a fixed seed inside a forked
    random state, so the result is repeatable and the caller's random stream is untouched. With
    ``seconds``, batches stop once that long has passed (the first always runs); ``images`` in the
    result says how many were measured.
    """
    device = next(model.parameters()).device
    totals = {"nll": 0.0, "kl": 0.0, "discrete_nll": 0.0}
    discrete = model.likelihood.measures_pixels
    loader = BatchLoader(images, batch_size, shuffle=False, drop_last=False, device=device)
    n = 0
    with model.evaluating(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for batch in within(loader, seconds):
            n += len(batch)
            target = model.likelihood.prepare(batch, stochastic=True)
            out = model(target)
            totals["nll"] += model.likelihood.nll(out.params, target).sum().item()
            totals["kl"] += out.posterior.kl().float().sum().item()
            if discrete:
                totals["discrete_nll"] += model.likelihood.discretised_nll(out.params, target).sum().item()
    nll, kl = totals["nll"] / n, totals["kl"] / n
    result = {"neg_elbo": nll + kl, "nll": nll, "kl": kl, "images": n}  # nll: the reconstruction term
    if model.likelihood.discrete:  # binarised pixels: a probability, in bits per dim as published
        result["bits_per_dim"] = bits_per_dim(nll + kl, images.shape[1:])
    if discrete:
        bound = totals["discrete_nll"] / n + kl  # an upper bound on -log P(x) of the 8-bit images
        result |= {"discrete_neg_elbo": bound, "discrete_bits_per_dim": bits_per_dim(bound, images.shape[1:])}
    return result


def likelihood_units(model: VAE) -> str:
    """One line saying what the headline likelihood numbers of ``model`` are, for a report."""
    name = type(model.likelihood).__name__
    if not model.likelihood.measures_pixels:
        return (
            f"{name}: neg_elbo is a training loss, not a likelihood of 8-bit images (no discrete NLL); "
            "compare it only between runs with the same likelihood and settings"
        )
    if model.likelihood.discrete:
        return f"{name} on binarised pixels: a probability mass, comparable with binarised-data tables"
    return (
        f"{name} density on [0, 1]: neg_elbo depends on its scale and compares only within one likelihood; "
        "discrete_* is the probability of the 8-bit pixel values (bins of 1/255): the headline, comparable "
        "across likelihoods and with published tables"
    )


def bits_per_dim(nats: float, image_shape: tuple[int, ...]) -> float:
    """Nats per image of a probability (binarised or 8-bit pixels) as bits per pixel-channel. A
    density's nats have none: its "+8 bits" figure compares with nothing published, and is not made."""
    dims = int(np.prod(image_shape))
    return nats / (dims * math.log(2))
