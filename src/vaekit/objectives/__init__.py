"""Training objectives: each owns its optimisers and one step (see ``base.Objective``)."""

from __future__ import annotations

from vaekit.config import Config, ConfigError
from vaekit.engine.precision import Precision
from vaekit.models.base import VAE
from vaekit.objectives.base import Objective, StepInfo
from vaekit.objectives.registry import OBJECTIVES
from vaekit.objectives.terms import TERMS, Terms
from vaekit.plugins import import_object, is_code_reference


def create_objective(model: VAE, config: Config, precision: Precision, *, trust_code: bool = False) -> Objective:
    """The objective ``config.objective.name`` names: built-in, or a plug-in ``package.module:Class``
    (an ``Objective`` subclass, imported only with ``trust_code``)."""
    name = config.objective.name
    if is_code_reference(name):
        cls = import_object(name, "objective.name", trust_code)
        if not (isinstance(cls, type) and issubclass(cls, Objective)):
            raise ConfigError(f"objective.name: {name} is not a vaekit Objective subclass")
        objective = cls(model, config, precision)
    else:
        objective = OBJECTIVES.get(name).factory(model, config, precision)
    objective.add_terms(Terms.build(model, config, precision, trust_code))
    return objective


__all__ = ["OBJECTIVES", "TERMS", "Objective", "StepInfo", "create_objective"]
