"""Learning-rate factor as a pure function of the step, so resuming needs no scheduler state.

A schedule is ``f(train, step, steps_per_epoch) -> factor`` on ``train.lr``, registered by name.
Milestones and decay count whole epochs; cosine anneals to 0 over the planned run (``train.epochs``),
so ``max_steps`` only stops a run early and a run stopped there and resumed follows the same schedule.
"""

from __future__ import annotations

import math

from vaekit.config import TrainConfig
from vaekit.registry import Registry

LR_SCHEDULES: Registry = Registry("learning-rate schedule", "train.lr_schedule")


@LR_SCHEDULES.register("constant", summary="train.lr throughout")
def _constant(train: TrainConfig, step: int, steps_per_epoch: int) -> float:
    return 1.0


@LR_SCHEDULES.register("multistep", summary="times lr_gamma at each of lr_milestones (epochs)")
def _multistep(train: TrainConfig, step: int, steps_per_epoch: int) -> float:
    return train.lr_gamma ** sum(step // max(steps_per_epoch, 1) >= m for m in train.lr_milestones)


@LR_SCHEDULES.register("exponential", summary="times lr_gamma per epoch")
def _exponential(train: TrainConfig, step: int, steps_per_epoch: int) -> float:
    return train.lr_gamma ** (step // max(steps_per_epoch, 1))


@LR_SCHEDULES.register("cosine", summary="half a cosine to 0 over train.epochs")
def _cosine(train: TrainConfig, step: int, steps_per_epoch: int) -> float:
    total = train.epochs * steps_per_epoch
    return 0.5 * (1 + math.cos(math.pi * min(step / max(total, 1), 1.0)))


def lr_factor(train: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Multiplier on ``train.lr`` at ``step``."""
    return LR_SCHEDULES.get(train.lr_schedule).factory(train, step, steps_per_epoch)
