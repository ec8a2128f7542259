"""The objectives' registry; each objective's file registers itself in it."""

from __future__ import annotations

from vaekit.registry import Registry

# adversarial: adds objective.adversarial's PatchGAN term; equivariance: adds objective.equivariance's
# EQ-VAE term; alignment: adds objective.alignment's VA-VAE / REPA-E term; accumulation: one backward and one update
# per step (micro-batches can share it); ddp: one forward and one backward of the model per update;
# continuous-likelihood: compares images as real values (gaussian, laplace, perceptual)
OBJECTIVES: Registry = Registry(
    "objective",
    "objective.name",
    capabilities=("adversarial", "equivariance", "alignment", "accumulation", "ddp", "continuous-likelihood"),
    plugins=True,
)
