"""Optimisers as the run's config describes them."""

from __future__ import annotations

import torch

from vaekit.config import Config


def make_optimizer(parameters, config: Config, lr: float | None = None) -> torch.optim.Optimizer:
    """Adam or AdamW with the run's learning rate (or ``lr``), betas and weight decay.

    ``initial_lr`` in each group is what the trainer's schedule multiplies. The fused
    implementation (one kernel over all parameters, CPU and CUDA) is used where this torch has it.
    """
    train = config.train
    kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    if train.optimizer not in kinds:
        raise ValueError(f"unknown optimizer {train.optimizer!r}: use adam or adamw")
    parameters = list(parameters)
    options = {"lr": lr or train.lr, "betas": tuple(train.betas), "weight_decay": train.weight_decay}
    try:
        optimizer = kinds[train.optimizer](parameters, fused=True, **options)
    except (RuntimeError, TypeError):  # an older torch, or a device without a fused kernel
        optimizer = kinds[train.optimizer](parameters, **options)
    for group in optimizer.param_groups:
        group["initial_lr"] = group["lr"]
    return optimizer
