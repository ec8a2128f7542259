"""The objectives' registry; each objective's file registers itself in it."""

from __future__ import annotations

from vaekit.registry import Registry

# (the terms an objective accepts are declared by each term: objectives/terms.py)
# accumulation: one backward and one update per step (micro-batches can share it); ddp: one forward and
# one backward of the model per update; continuous-likelihood: compares images as real values (gaussian,
# laplace, perceptual); any-latent: trains every latent kind (else the Gaussian only, see models/latents.py)
OBJECTIVES: Registry = Registry(
    "objective",
    "objective.name",
    capabilities=("accumulation", "ddp", "continuous-likelihood", "any-latent"),
    plugins=True,
    section="objective",
)
