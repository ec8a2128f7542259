"""Optimisers as the run's config describes them."""

from __future__ import annotations

import torch

from vaekit.config import Config


def make_optimizer(parameters, config: Config, lr: float | None = None) -> torch.optim.Optimizer:
    """Adam or AdamW with the run's learning rate (or ``lr``), betas and weight decay.

    ``initial_lr`` in each group is what the trainer's schedule multiplies.
    """
    train = config.train
    kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    if train.optimizer not in kinds:
        raise ValueError(f"unknown optimizer {train.optimizer!r}: use adam or adamw")
    optimizer = kinds[train.optimizer](
        list(parameters), lr=lr or train.lr, betas=tuple(train.betas), weight_decay=train.weight_decay
    )
    for group in optimizer.param_groups:
        group["initial_lr"] = group["lr"]
    return optimizer
