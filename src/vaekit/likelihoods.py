"""Reconstruction terms p(x|z). Each returns a per-sample negative log-likelihood summed over
pixels, in nats, and is the one place that decides the decoder's output range.

Data always arrives in [0, 1]. ``prepare`` maps it to the likelihood's target space (binarised
for a dynamically binarised Bernoulli, [-1, 1] for a tanh Gaussian/Laplace) and ``mean`` maps
decoder outputs back to a displayable image in [0, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vaekit.config import LikelihoodConfig


def _sum_per_sample(values: torch.Tensor) -> torch.Tensor:
    return values.flatten(1).sum(1)


class Likelihood(nn.Module):
    """Base class: ``prepare`` data, ``nll`` of a target under decoder outputs, ``mean`` image.

    ``discrete``: the NLL is of discrete values (a probability mass), not a density on [0, 1].
    """

    discrete = False

    def prepare(self, x: torch.Tensor, stochastic: bool = False) -> torch.Tensor:
        """Map a [0, 1] batch to the target space (``stochastic``: draw binarisations etc.)."""
        return x

    def nll(self, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The expected image in [0, 1]."""
        raise NotImplementedError


class Bernoulli(Likelihood):
    """Decoder outputs logits. ``binarize='dynamic'`` samples binary targets each time."""

    discrete = True

    def __init__(self, binarize: str = "none") -> None:
        super().__init__()
        if binarize not in ("none", "dynamic"):
            raise ValueError(f"likelihood.binarize must be none or dynamic, got {binarize!r}")
        self.binarize = binarize

    def prepare(self, x: torch.Tensor, stochastic: bool = False) -> torch.Tensor:
        if self.binarize == "dynamic" and stochastic:
            return torch.bernoulli(x)
        return x

    def nll(self, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(params.float(), target.float(), reduction="none")
        return _sum_per_sample(bce)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params.float())


class _LocationScale(Likelihood):
    """Shared by Gaussian and Laplace: an output activation for the location and a scale that is
    fixed or learned (one scalar, stored as its log)."""

    def __init__(self, scale: float = 1.0, learn_scale: bool = False, output: str = "sigmoid") -> None:
        super().__init__()
        if output not in ("sigmoid", "tanh", "identity"):
            raise ValueError(f"likelihood.output must be sigmoid, tanh or identity, got {output!r}")
        if scale <= 0:
            raise ValueError(f"likelihood.scale must be positive, got {scale}")
        self.output = output
        log_scale = torch.tensor(math.log(scale))
        if learn_scale:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    def prepare(self, x: torch.Tensor, stochastic: bool = False) -> torch.Tensor:
        return x * 2 - 1 if self.output == "tanh" else x

    def location(self, params: torch.Tensor) -> torch.Tensor:
        params = params.float()
        if self.output == "sigmoid":
            return torch.sigmoid(params)
        if self.output == "tanh":
            return torch.tanh(params)
        return params

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        location = self.location(params)
        return ((location + 1) / 2 if self.output == "tanh" else location).clamp(0, 1)


class Gaussian(_LocationScale):
    """N(x; mu(z), sigma^2) per pixel."""

    def nll(self, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_sigma = self.log_scale.float()
        z = (target.float() - self.location(params)) * torch.exp(-log_sigma)
        return _sum_per_sample(0.5 * z.square() + log_sigma + 0.5 * math.log(2 * math.pi))


class Laplace(_LocationScale):
    """Laplace(x; mu(z), b) per pixel: the L1 loss |x - mu| / b, plus its normaliser log(2b)."""

    def nll(self, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_b = self.log_scale.float()
        distance = (target.float() - self.location(params)).abs() * torch.exp(-log_b)
        return _sum_per_sample(distance + log_b + math.log(2))


def create_likelihood(config: LikelihoodConfig) -> Likelihood:
    """The likelihood named by ``config.name``."""
    if config.name == "bernoulli":
        return Bernoulli(config.binarize)
    if config.name in ("gaussian", "laplace"):
        cls = Gaussian if config.name == "gaussian" else Laplace
        return cls(scale=config.scale, learn_scale=config.learn_scale, output=config.output)
    raise ValueError(f"unknown likelihood {config.name!r}: use bernoulli, gaussian or laplace")
