"""Exponential moving average of a module's parameters."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class EMA:
    """shadow = decay * shadow + (1 - decay) * parameter, after every ``update``."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.module, self.decay = module, decay
        self.shadow = {name: p.detach().clone() for name, p in module.named_parameters()}

    @torch.no_grad()
    def update(self) -> None:
        for name, parameter in self.module.named_parameters():
            self.shadow[name].lerp_(parameter.detach(), 1 - self.decay)

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
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, value in state.items():
            self.shadow[name].copy_(value)
