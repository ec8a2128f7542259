"""One optimiser update: ``StepInfo``, the context a step runs in (where training is, which
micro-batch), and ``update``, which runs the micro-batches of one update with per-image noise, for
the trainer and for anyone driving an objective directly."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from vaekit import noise
from vaekit.engine.precision import Precision


@dataclass(frozen=True)
class StepInfo:
    """Where training is when a step runs; passed to ``Objective.step`` and on to ``minimize``."""

    step: int  # steps completed before this one
    epoch: float  # fractional epochs completed before this one
    total_steps: int = 0  # planned length, train.epochs x steps per epoch (max_steps stops early, keeps it)
    batch_size: int = 0  # images in the whole update (all processes and micro-batches); 0: the batch given
    micro_batch: int = 0  # which of train.accumulate micro-batches of the update this step is


def update(
    objective, precision: Precision, batch: torch.Tensor, info: StepInfo, seed: int, shard: tuple[int, int] = (0, 1)
) -> dict[str, torch.Tensor]:
    """One optimiser update of ``objective`` from this process's ``batch``, in ``precision.accumulate``
    micro-batches; returns the step's scalars (the micro-batches' mean).

    Noise is drawn per image of the global batch, seeded by ``seed`` (see ``vaekit.noise``), so the
    update is the same however the batch is split over processes (``shard`` = (rank, world)) and
    micro-batches.
    """
    k, (rank, world) = precision.accumulate, shard
    size = len(batch) // k
    precision.begin()
    results = []
    for i in range(k):
        with noise.batch_shard(seed, rank * k + i, world * k), precision.no_sync(i):
            results.append(objective.step(batch[i * size : (i + 1) * size], replace(info, micro_batch=i)))
    if k == 1:
        return results[0]
    return {name: torch.stack([r[name] for r in results]).mean(0) for name in results[0]}
