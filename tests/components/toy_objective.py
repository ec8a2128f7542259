"""A toy objective: the ELBO with half the KL weight, without the adversarial term."""

from __future__ import annotations

from vaekit.objectives.elbo import ELBO
from vaekit.objectives.registry import OBJECTIVES


@OBJECTIVES.register("toy-half-kl", summary="the ELBO with half its KL weight (a test's toy)")
class HalfKL(ELBO):
    capabilities = frozenset({"accumulation", "ddp"})

    def __init__(self, model, config, precision) -> None:
        halved = config.with_overrides({"objective.kl.weight": config.objective.kl.weight / 2})
        super().__init__(model, halved, precision)
