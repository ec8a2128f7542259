"""What every objective provides to the trainer."""

from __future__ import annotations

import contextlib
import warnings

import torch

from vaekit.config import Config
from vaekit.engine.precision import Precision
from vaekit.engine.step import StepInfo
from vaekit.models.base import VAE
from vaekit.objectives.terms import Terms


class Objective:
    """Owns its optimisers and one training step; the trainer owns everything else.

    ``step`` returns detached scalar tensors named in ``metric_names`` (no host sync needed).
    """

    metric_names: tuple[str, ...] = ("loss",)
    capabilities: frozenset[str] = frozenset()  # see objectives/registry.py; what the registry records

    def __init__(self, model: VAE, config: Config, precision: Precision) -> None:
        self.model = model
        self.config = config
        self.precision = precision
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.forward_pass: torch.nn.Module = model  # what ``step`` calls for model(x); DDP's wrapper when replicated
        self.terms = Terms()  # the enabled objective terms (create_objective adds them)

    def add_terms(self, terms: Terms) -> None:
        """Run ``terms`` in every step: their optimisers join the objective's, their logs its columns."""
        self.terms = terms
        self.optimizers.update(terms.optimizers)
        self.metric_names = (*self.metric_names, *terms.logs)

    def step(self, batch: torch.Tensor, info: StepInfo) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @property
    def supports_ddp(self) -> bool:
        """Whether each update is one ``forward_pass`` and one backward of the model, so that
        DistributedDataParallel can average its gradients during backward."""
        return "ddp" in self.capabilities

    @property
    def supports_accumulation(self) -> bool:
        """Whether ``step`` is one backward and one update, so that micro-batches can share it (the
        discriminator's update is a second phase)."""
        return "accumulation" in self.capabilities and not self.terms.second_phase

    def end_of_epoch(self, epoch: int) -> str | None:
        """A warning about the epoch just finished, if any (e.g. a collapsing game)."""
        return None

    def export_context(self) -> contextlib.AbstractContextManager:
        """Weights to sample from and to save (e.g. an EMA decoder swapped in)."""
        return contextlib.nullcontext()

    def state_dict(self) -> dict:
        return {**{name: opt.state_dict() for name, opt in self.optimizers.items()}, **self.terms.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.terms.load_state_dict(state)
        for name, opt in self.optimizers.items():
            saved = [len(group["params"]) for group in state[name]["param_groups"]]
            if saved != [len(group["params"]) for group in opt.param_groups]:
                warnings.warn(
                    f"optimizer {name}: the checkpoint's trained other parameters (train.trainable changed); "
                    "a fresh optimizer starts for the ones trained now",
                    stacklevel=2,
                )
                continue
            configured = [group["initial_lr"] for group in opt.param_groups]
            opt.load_state_dict(state[name])
            for group, lr in zip(opt.param_groups, configured, strict=True):
                group["initial_lr"] = lr  # a learning rate changed with --set on resume wins
