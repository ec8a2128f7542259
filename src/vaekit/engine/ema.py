"""Exponential moving average of a module's parameters."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class EMA:
    """shadow = decay * shadow + (1 - decay) * parameter, after every ``update``.

    ``warmup``: the decay of update n is min(decay, (1 + n) / (10 + n)), so that a short run's
    average is not dominated by the initial weights (as timm's and diffusers' EMA do).
    """

    def __init__(self, module: nn.Module, decay: float, warmup: bool = False) -> None:
        self.module, self.decay, self.warmup = module, decay, warmup
        self.updates = 0
        self.shadow = {name: p.detach().clone() for name, p in module.named_parameters()}

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        weight = 1 - self.current_decay()
        for name, parameter in self.module.named_parameters():
            self.shadow[name].lerp_(parameter.detach(), weight)
        self.updates += 1

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Swap the averages into the module for the duration of the block."""
        backup = {name: p.detach().clone() for name, p in self.module.named_parameters()}
        with torch.no_grad():
            for name, parameter in self.module.named_parameters():
                parameter.copy_(self.shadow[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, parameter in self.module.named_parameters():
                    parameter.copy_(backup[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**self.shadow, "_updates": torch.tensor(self.updates)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, value in state.items():
            if name == "_updates":
                self.updates = int(value)
            else:
                self.shadow[name].copy_(value)
