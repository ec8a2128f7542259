"""A toy likelihood without a CDF: Student-t with 3 degrees of freedom, written like the Gaussian.

torch's Student-t has no ``cdf``, so the 8-bit pixel mass is undefined: validation and evaluation
must skip the discretised likelihood for it instead of failing at the end of the first epoch."""

from __future__ import annotations

import torch

from vaekit.likelihoods import LIKELIHOODS, Gaussian


class StudentT(Gaussian):
    def distribution(self, params: torch.Tensor) -> torch.distributions.StudentT:
        location = self.location(params).to(params.dtype)
        return torch.distributions.StudentT(3.0, location, self.log_scale.to(params.dtype).exp().expand_as(location))

    def nll(self, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return -self.distribution(params.float()).log_prob(target.float()).flatten(1).sum(1)


@LIKELIHOODS.register("toy-student-t", summary="Student-t, 3 degrees of freedom, no CDF (a test's toy)")
def student_t(config, trust_code: bool) -> StudentT:
    return StudentT(scale=config.scale, learn_scale=config.learn_scale, output=config.output)
