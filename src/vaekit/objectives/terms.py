"""Objective terms: losses an objective adds to its own (PatchGAN, EQ-VAE, alignment, ...), a registry kind.

A term registers itself in its own file with its options (a dataclass with an ``enabled`` flag, kept
at ``objective.<name>``), the objectives that accept it and the columns it logs::

    @TERMS.register("equivariance", options=EquivarianceConfig, objectives={"elbo"},
                    logs=("eq_loss", "eq_error"), capabilities={"spatial-latent"})
    class EquivarianceTerm(Term): ...

An objective runs every enabled term through one loop (``Terms``): each term's loss is added to
the loss it minimises and its logs join the step's scalars; a term with a second phase (the
discriminator's update) runs it after the objective's update. Switching a term on for an objective
that does not accept it is a config error found before any data work (``check_terms``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

import torch

from vaekit.config import Config, ConfigError
from vaekit.engine.precision import Precision
from vaekit.engine.step import StepInfo
from vaekit.models.base import VAE
from vaekit.registry import Registry

# second-phase: an update of its own after the objective's (micro-batches cannot share a step);
# spatial-latent: needs an architecture whose latent is a (C, H, W) map
TERMS: Registry = Registry(
    "objective term",
    "objective.<term>.enabled",
    capabilities=("second-phase", "spatial-latent"),
    section="objective",
    declares=("objectives", "logs"),
)


class TermInputs:
    """What a step hands its terms: the batch as given ([0, 1]), the likelihood's target, the latent
    sample ``z`` and the decoder's ``params``, the reconstruction loss to balance against, and the
    decoded images in [0, 1] (made on first use, by the objective's own recipe)."""

    def __init__(
        self,
        batch: torch.Tensor,
        target: torch.Tensor,
        reconstruction_loss: torch.Tensor,
        make_images: Callable[[], torch.Tensor],
        z: torch.Tensor | None = None,
        params: torch.Tensor | None = None,
    ) -> None:
        self.batch, self.target, self.reconstruction_loss = batch, target, reconstruction_loss
        self.z, self.params, self._make_images = z, params, make_images

    @cached_property
    def images(self) -> torch.Tensor:
        return self._make_images()


class Term:
    """One term: built when ``objective.<name>.enabled``; ``loss`` is added to the objective's loss."""

    def __init__(self, model: VAE, config: Config, precision: Precision, trust_code: bool = False) -> None:
        self.model, self.config, self.precision = model, config, precision
        self.optimizers: dict[str, torch.optim.Optimizer] = {}  # its own, saved with the objective's
        self.joint_optimizer: torch.optim.Optimizer | None = None  # stepped in the objective's own update

    @classmethod
    def check(cls, config: Config) -> None:
        """Raise a ``ConfigError`` for settings the term cannot run with (before any data work)."""

    def loss(self, inputs: TermInputs, info: StepInfo) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """(what to add to the objective's loss, or None; the logged scalars, detached)."""
        raise NotImplementedError

    def after_update(self, inputs: TermInputs, info: StepInfo) -> dict[str, torch.Tensor]:
        """A second phase after the objective's update (e.g. the discriminator's); its logged scalars."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def skips_nonfinite(config: Config) -> bool:
    """Whether updates with non-finite gradients are dropped: ``train.on_nonfinite``, where ``auto``
    means while a term with a second phase (a discriminator) trains."""
    choice = config.train.on_nonfinite
    return choice == "skip" or (choice == "auto" and any(entry.has("second-phase") for entry in enabled_terms(config)))


def enabled_terms(config: Config) -> list:
    """The registry entries of the terms ``config`` switches on."""
    return [entry for entry in TERMS if getattr(config.objective, entry.options_key.rpartition(".")[2]).enabled]


def check_terms(config: Config, architecture_capabilities: frozenset[str] | None = None) -> None:
    """Each enabled term is accepted by the objective and can run with the architecture and settings:
    else one ``ConfigError`` naming ``objective.<term>``."""
    objective = config.objective.name
    for entry in enabled_terms(config):
        accepted = entry.declares.get("objectives", ())
        if objective not in accepted:
            raise ConfigError(
                f"{entry.options_key}.enabled: the {entry.name} term does not run with objective {objective}"
                + (f"; use it with {', '.join(sorted(accepted))}" if accepted else "")
            )
        if config.train.accumulate > 1 and entry.has("second-phase"):
            raise ConfigError(
                f"train.accumulate: {objective} with the {entry.name} term cannot share a step over micro-batches "
                "(the term's update is a second phase)"
            )
        if entry.has("spatial-latent") and "spatial-latent" not in (architecture_capabilities or {"spatial-latent"}):
            raise ConfigError(
                f"{entry.options_key}: needs a spatial latent (C, H, W); model.arch {config.model.arch} has a "
                "flat one (use autoencoder-kl or spatial)"
            )
        entry.factory.check(config)


class Terms:
    """The enabled terms of one objective, run through one loop."""

    def __init__(self, terms: dict[str, Term] | None = None, entries: dict[str, Any] | None = None) -> None:
        """``terms`` by name, and the registry entry of each (what it declared)."""
        self.terms, self.entries = terms or {}, entries or {}

    @classmethod
    def build(cls, model: VAE, config: Config, precision: Precision, trust_code: bool = False) -> Terms:
        check_terms(config)
        entries = {entry.name: entry for entry in enabled_terms(config)}
        terms = {name: entry.factory(model, config, precision, trust_code) for name, entry in entries.items()}
        return cls(terms, entries)

    @property
    def logs(self) -> tuple[str, ...]:
        """The columns the terms declared, in their order."""
        return tuple(column for entry in self.entries.values() for column in entry.declares.get("logs", ()))

    def __contains__(self, name: str) -> bool:
        return name in self.terms

    def __getitem__(self, name: str) -> Term:
        return self.terms[name]

    def __bool__(self) -> bool:
        return bool(self.terms)

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {name: opt for term in self.terms.values() for name, opt in term.optimizers.items()}

    @property
    def second_phase(self) -> bool:
        return any(entry.has("second-phase") for entry in self.entries.values())

    def joint(self, optimizers: list, parameters: list) -> tuple[list, list]:
        """The objective's optimisers and parameters with those the terms update in the same step."""
        for term in self.terms.values():
            if term.joint_optimizer is not None:
                optimizers = [*optimizers, term.joint_optimizer]
                parameters = [*parameters, *(p for g in term.joint_optimizer.param_groups for p in g["params"])]
        return optimizers, parameters

    def add(
        self, loss: torch.Tensor, inputs: TermInputs, info: StepInfo
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``loss`` plus every term's, and their logs (each declared column, every step)."""
        logs: dict[str, torch.Tensor] = {}
        for name, term in self.terms.items():
            added, logged = term.loss(inputs, info)
            if added is not None:
                loss = loss + added
            logs.update(logged)
            self._check_logs(name, logged)
        return loss, logs

    def after_update(self, inputs: TermInputs, info: StepInfo) -> dict[str, torch.Tensor]:
        logs: dict[str, torch.Tensor] = {}
        for name, term in self.terms.items():
            logged = term.after_update(inputs, info)
            self._check_logs(name, logged)
            logs.update(logged)
        return logs

    def _check_logs(self, name: str, logged: dict) -> None:
        undeclared = set(logged) - set(self.entries[name].declares.get("logs", ()))
        if undeclared:
            raise RuntimeError(f"objective term {name} logged {sorted(undeclared)}, which it did not declare")

    def state_dict(self) -> dict[str, Any]:
        return {key: value for term in self.terms.values() for key, value in term.state_dict().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for term in self.terms.values():
            term.load_state_dict(state)
