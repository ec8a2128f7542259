"""Training objectives: each owns its optimisers and one step (see ``base.Objective``)."""

from __future__ import annotations

import difflib

from vaekit.config import Config, ConfigError
from vaekit.engine.precision import Precision
from vaekit.models.base import VAE
from vaekit.objectives.base import Objective, StepInfo
from vaekit.objectives.elbo import ELBO
from vaekit.objectives.intro import ASIntro, SoftIntro
from vaekit.plugins import import_object, is_code_reference

OBJECTIVES: dict[str, type[Objective]] = {"elbo": ELBO, "soft-intro": SoftIntro, "as-intro": ASIntro}


def create_objective(model: VAE, config: Config, precision: Precision, *, trust_code: bool = False) -> Objective:
    """The objective ``config.objective.name`` names: built-in, or a plug-in ``package.module:Class``
    (an ``Objective`` subclass, imported only with ``trust_code``)."""
    name = config.objective.name
    if is_code_reference(name):
        cls = import_object(name, "objective.name", trust_code)
        if not (isinstance(cls, type) and issubclass(cls, Objective)):
            raise ConfigError(f"objective.name: {name} is not a vaekit Objective subclass")
        return cls(model, config, precision)
    if name not in OBJECTIVES:
        hint = difflib.get_close_matches(name, list(OBJECTIVES), n=1)
        raise ConfigError(
            f"objective.name: unknown objective {name!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; use one of {', '.join(OBJECTIVES)}, or package.module:Class"
        )
    return OBJECTIVES[name](model, config, precision)


__all__ = ["OBJECTIVES", "Objective", "StepInfo", "create_objective"]
