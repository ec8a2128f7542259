"""Training objectives: each owns its optimisers and one step (see ``base.Objective``)."""

from __future__ import annotations

from vaekit.config import Config
from vaekit.models.base import VAE
from vaekit.objectives.base import Objective, StepInfo
from vaekit.objectives.elbo import ELBO
from vaekit.objectives.intro import ASIntro, SoftIntro
from vaekit.training.precision import Precision

OBJECTIVES: dict[str, type[Objective]] = {"elbo": ELBO, "soft-intro": SoftIntro, "as-intro": ASIntro}


def create_objective(model: VAE, config: Config, precision: Precision) -> Objective:
    name = config.objective.name
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}: use one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name](model, config, precision)


__all__ = ["OBJECTIVES", "Objective", "StepInfo", "create_objective"]
