"""What every objective provides to the trainer."""

from __future__ import annotations

import contextlib

import torch

from vaekit.config import Config, ConfigError
from vaekit.engine.precision import Precision
from vaekit.engine.step import StepInfo
from vaekit.models.base import VAE
from vaekit.objectives.adversarial import AdversarialTerm
from vaekit.objectives.alignment import AlignmentTerm
from vaekit.objectives.equivariance import EquivarianceTerm


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
        self.adversarial: AdversarialTerm | None = None
        if config.objective.adversarial.enabled and not self.supports_adversarial:
            raise ConfigError(
                f"objective.adversarial.enabled: {config.objective.name} has no adversarial term; "
                "use it with elbo, soft-intro or as-intro"
            )
        if config.objective.adversarial.enabled:
            self.adversarial = AdversarialTerm(model, config, precision)
            self.optimizers["discriminator"] = self.adversarial.optimizer
        self.equivariance: EquivarianceTerm | None = None
        if config.objective.equivariance.enabled:
            if "equivariance" not in self.capabilities:
                raise ConfigError(
                    f"objective.equivariance.enabled: {config.objective.name} has no equivariance term; "
                    "use it with elbo"
                )
            self.equivariance = EquivarianceTerm(model, config)
        self.alignment: AlignmentTerm | None = None  # built by create_objective (it may import trusted code)
        if config.objective.alignment.enabled and "alignment" not in self.capabilities:
            raise ConfigError(
                f"objective.alignment.enabled: {config.objective.name} has no alignment term; use it with elbo"
            )

    def attach_alignment(self, trust_code: bool = False) -> None:
        """Build ``objective.alignment``'s term (the frozen feature network and the projection)."""
        self.alignment = AlignmentTerm(self.model, self.config, trust_code)
        self.optimizers["alignment"] = self.alignment.optimizer

    def step(self, batch: torch.Tensor, info: StepInfo) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @property
    def supports_adversarial(self) -> bool:
        """Whether ``step`` adds ``self.adversarial``'s term (objective.adversarial)."""
        return "adversarial" in self.capabilities

    @property
    def supports_ddp(self) -> bool:
        """Whether each update is one ``forward_pass`` and one backward of the model, so that
        DistributedDataParallel can average its gradients during backward."""
        return "ddp" in self.capabilities

    @property
    def supports_accumulation(self) -> bool:
        """Whether ``step`` is one backward and one update, so that micro-batches can share it (the
        discriminator's update is a second phase)."""
        return "accumulation" in self.capabilities and self.adversarial is None

    def end_of_epoch(self, epoch: int) -> str | None:
        """A warning about the epoch just finished, if any (e.g. a collapsing game)."""
        return None

    def export_context(self) -> contextlib.AbstractContextManager:
        """Weights to sample from and to save (e.g. an EMA decoder swapped in)."""
        return contextlib.nullcontext()

    def state_dict(self) -> dict:
        state = {name: opt.state_dict() for name, opt in self.optimizers.items()}
        if self.adversarial is not None:
            state["discriminator_weights"] = self.adversarial.discriminator.state_dict()
        if self.alignment is not None:
            state["alignment_projection"] = self.alignment.projection.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        if self.adversarial is not None:
            self.adversarial.discriminator.load_state_dict(state["discriminator_weights"])
        if self.alignment is not None:
            self.alignment.projection.load_state_dict(state["alignment_projection"])
        for name, opt in self.optimizers.items():
            configured = [group["initial_lr"] for group in opt.param_groups]
            opt.load_state_dict(state[name])
            for group, lr in zip(opt.param_groups, configured, strict=True):
                group["initial_lr"] = lr  # a learning rate changed with --set on resume wins
