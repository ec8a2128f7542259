"""A toy objective term: an L1 penalty on the latent sample, with the ELBO."""

from __future__ import annotations

from dataclasses import dataclass

from vaekit.objectives.terms import TERMS, Term
from vaekit.schema import non_negative


@dataclass(frozen=True)
class SparseLatentConfig:
    enabled: bool = False
    weight: float = non_negative(0.01)


@TERMS.register(
    "toy-sparse-latent",
    options=SparseLatentConfig,
    summary="weight x mean |z| (a test's toy)",
    objectives={"elbo"},
    logs=("sparse_loss",),
)
class SparseLatent(Term):
    def loss(self, inputs, info):
        loss = self.config.objective.toy_sparse_latent.weight * inputs.z.abs().mean()
        return loss, {"sparse_loss": loss.detach()}
