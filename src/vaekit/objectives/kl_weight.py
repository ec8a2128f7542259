"""The KL weight over training (constant, linear warm-up, sigmoid of epoch, 1/batch) and free bits."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vaekit.config import component
from vaekit.registry import Registry
from vaekit.schema import bounded, non_negative


@dataclass(frozen=True)
class KLConfig:
    """Weight of the KL term over training, and free bits."""

    schedule: str = component("kl schedule", "constant")
    weight: float = non_negative(1.0)  # final (or constant) weight
    warmup_steps: int = non_negative(0)  # linear: steps from 0 to `weight`
    sigmoid_center: float = 5.0  # sigmoid: epoch at which the weight is weight/2
    sigmoid_slope: float = bounded(1.0, 0, above=True)  # sigmoid: steepness per epoch
    free_bits: float = non_negative(0.0)  # nats per latent dimension below which KL is not penalised
    group_weights: list[float] = non_negative([])  # per latent group (e.g. style levels), x weight


# A schedule is ``f(options, step, epoch, batch_size) -> weight`` (``epoch`` counts fractional epochs from 0)
KL_SCHEDULES: Registry = Registry("kl schedule", "objective.kl.schedule")


@KL_SCHEDULES.register("constant", summary="weight throughout")
def _constant(config: KLConfig, step: int, epoch: float, batch_size: int) -> float:
    return config.weight


@KL_SCHEDULES.register("linear", summary="from 0 to weight over warmup_steps")
def _linear(config: KLConfig, step: int, epoch: float, batch_size: int) -> float:
    if config.warmup_steps <= 0:
        return config.weight
    return config.weight * min(1.0, step / config.warmup_steps)


@KL_SCHEDULES.register("sigmoid", summary="weight / (1 + exp(-sigmoid_slope (epoch - sigmoid_center)))")
def _sigmoid(config: KLConfig, step: int, epoch: float, batch_size: int) -> float:
    return config.weight / (1.0 + math.exp(-config.sigmoid_slope * (epoch - config.sigmoid_center)))


@KL_SCHEDULES.register("inverse_batch", summary="weight / batch size")
def _inverse_batch(config: KLConfig, step: int, epoch: float, batch_size: int) -> float:
    return config.weight / batch_size


def kl_weight(config: KLConfig, step: int, epoch: float, batch_size: int) -> float:
    """The weight on KL at ``step`` (``epoch`` counts fractional epochs from 0)."""
    return KL_SCHEDULES.get(config.schedule).factory(config, step, epoch, batch_size)


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
