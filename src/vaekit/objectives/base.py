"""What every objective provides to the trainer."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vaekit.config import Config
from vaekit.models.base import VAE
from vaekit.training.precision import Precision


@dataclass(frozen=True)
class StepInfo:
    """Where training is when a step runs."""

    step: int  # steps completed before this one
    epoch: float  # fractional epochs completed before this one


class Objective:
    """Owns its optimisers and one training step; the trainer owns everything else.

    ``step`` returns detached scalar tensors named in ``metric_names`` (no host sync needed).
    """

    metric_names: tuple[str, ...] = ("loss",)

    def __init__(self, model: VAE, config: Config, precision: Precision) -> None:
        self.model = model
        self.config = config
        self.precision = precision
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    def step(self, batch: torch.Tensor, info: StepInfo) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {name: opt.state_dict() for name, opt in self.optimizers.items()}

    def load_state_dict(self, state: dict) -> None:
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])


def make_optimizer(parameters, config: Config) -> torch.optim.Optimizer:
    """Adam or AdamW with the run's learning rate, betas and weight decay."""
    train = config.train
    kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    if train.optimizer not in kinds:
        raise ValueError(f"unknown optimizer {train.optimizer!r}: use adam or adamw")
    return kinds[train.optimizer](
        list(parameters), lr=train.lr, betas=tuple(train.betas), weight_decay=train.weight_decay
    )
