"""The KL weight over training (constant, linear warm-up, sigmoid of epoch, 1/batch) and free bits."""

from __future__ import annotations

import math

import torch

from vaekit.config import KLConfig

SCHEDULES = ("constant", "linear", "sigmoid", "inverse_batch")


def kl_weight(config: KLConfig, step: int, epoch: float, batch_size: int) -> float:
    """The weight on KL at ``step`` (``epoch`` counts fractional epochs from 0)."""
    if config.schedule == "constant":
        return config.weight
    if config.schedule == "linear":
        if config.warmup_steps <= 0:
            return config.weight
        return config.weight * min(1.0, step / config.warmup_steps)
    if config.schedule == "sigmoid":
        return config.weight / (1.0 + math.exp(-config.sigmoid_slope * (epoch - config.sigmoid_center)))
    if config.schedule == "inverse_batch":
        return config.weight / batch_size
    raise ValueError(f"unknown KL schedule {config.schedule!r}: use one of {', '.join(SCHEDULES)}")


def penalised_kl(kl_per_dim: torch.Tensor, free_bits: float) -> torch.Tensor:
    """Batch-mean KL to penalise. With ``free_bits`` > 0, each latent element's batch-mean KL
    below ``free_bits`` nats costs nothing (Kingma et al. 2016)."""
    per_dim = kl_per_dim.flatten(1).mean(0)
    if free_bits > 0:
        per_dim = per_dim.clamp(min=free_bits)
    return per_dim.sum()


def grouped_kl(
    kl_per_dim: torch.Tensor, free_bits: float, groups: list[tuple[str, int, int]], weights: list[float]
) -> torch.Tensor:
    """``penalised_kl`` per latent group, each times its weight (all of the latent if no groups)."""
    if not weights:
        return penalised_kl(kl_per_dim, free_bits)
    flat = kl_per_dim.flatten(1)
    return sum(w * penalised_kl(flat[:, a:b], free_bits) for (_, a, b), w in zip(groups, weights, strict=True))
