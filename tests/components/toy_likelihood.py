"""A toy likelihood: a Gaussian of unit scale (squared error / 2 plus the normaliser)."""

from __future__ import annotations

from vaekit.likelihoods import LIKELIHOODS, Gaussian


@LIKELIHOODS.register("toy-unit-gaussian", summary="a Gaussian of scale 1 (a test's toy)", capabilities={"continuous"})
def unit_gaussian(config, trust_code: bool) -> Gaussian:
    return Gaussian(scale=1.0, learn_scale=False, output=config.output)
