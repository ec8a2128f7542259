"""Learning-rate factor as a pure function of the step, so resuming needs no scheduler state."""

from __future__ import annotations

import math

from vaekit.config import TrainConfig

SCHEDULES = ("constant", "multistep", "exponential", "cosine")


def lr_factor(train: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Multiplier on ``train.lr`` at ``step``. Milestones and decay count whole epochs; cosine
    anneals to 0 over the planned run (``train.epochs``), so ``max_steps`` only stops a run early and
    a run stopped there and resumed follows the same schedule."""
    epoch = step // max(steps_per_epoch, 1)
    if train.lr_schedule == "constant":
        return 1.0
    if train.lr_schedule == "multistep":
        return train.lr_gamma ** sum(epoch >= m for m in train.lr_milestones)
    if train.lr_schedule == "exponential":
        return train.lr_gamma**epoch
    if train.lr_schedule == "cosine":
        total = train.epochs * steps_per_epoch
        return 0.5 * (1 + math.cos(math.pi * min(step / max(total, 1), 1.0)))
    raise ValueError(f"unknown lr_schedule {train.lr_schedule!r}: use one of {', '.join(SCHEDULES)}")
