"""Reconstruction terms p(x|z). Each returns a per-sample negative log-likelihood summed over
pixels, in nats, and is the one place that decides the decoder's output range.

Data always arrives in [0, 1]. ``prepare`` maps it to the likelihood's target space (binarised
for a dynamically binarised Bernoulli, [-1, 1] for a tanh Gaussian/Laplace) and ``mean`` maps
decoder outputs back to a displayable image in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vaekit import noise
from vaekit.config import LikelihoodConfig
from vaekit.plugins import import_object, is_code_reference
from vaekit.registry import Registry
from vaekit.schema import MAX_IMAGE_SIZE, non_negative, positive


@dataclass(frozen=True)
class PerceptualConfig:
    """Feature-space reconstruction term (``likelihood.name: perceptual``)."""

    # vgg16 | vgg19 | lpips-vgg | lpips-alex | classifier (weights: a train-classifier file; layers body.1,
    # body.4, body.9) | package.module:factory (layers by name)
    network: str = "vgg16"
    layers: list[str] = field(default_factory=lambda: ["relu1_1", "relu2_1", "relu3_1"])
    layer_weights: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    resize: int | None = positive(
        256, MAX_IMAGE_SIZE
    )  # images are resized to this before the network (None: as they are)
    imagenet_normalize: bool = True
    weights: str | None = None  # local weights file; default: torch.hub cache / public URL
    random_weights: bool = False  # only for tests and CPU-only benchmarks; never a silent fallback
    pixel: Literal["none", "gaussian", "laplace"] = "none"  # add a pixel term (with likelihood.scale)
    pixel_weight: float = non_negative(1.0)


def _sum_per_sample(values: torch.Tensor) -> torch.Tensor:
    return values.flatten(1).sum(1)


class Likelihood(nn.Module):
    """Base class: ``prepare`` data, ``nll`` of a target under decoder outputs, ``mean`` image.

    ``discrete``: the NLL is of discrete values (a probability mass), not a density on [0, 1].
    ``discretised_nll`` is the NLL of the 8-bit pixel values themselves (a mass over 256 levels,
    or over 2 for binarised data): the number published tables compare. Only likelihoods that
    ``measure_pixels`` have one (not grey-level cross-entropy, not perceptual distances).
    """

    discrete = False
    PIXEL_LEVELS = 256  # 8-bit data

    @property
    def measures_pixels(self) -> bool:
        """Whether ``discretised_nll`` is defined: the model is a probability of the pixel values."""
        return False

    def discretised_nll(self, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-sample ``-log P(x)`` of the 8-bit ``target``, in nats."""
        raise NotImplementedError(f"{type(self).__name__} is not a probability of 8-bit pixel values")

    def prepare(self, x: torch.Tensor, stochastic: bool = False) -> torch.Tensor:
        """Map a [0, 1] batch to the target space (``stochastic``: draw binarisations etc.)."""
        return x

    def nll(self, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def image(self, params: torch.Tensor) -> torch.Tensor:
        """The expected image on the [0, 1] scale, differentiable and not clamped."""
        raise NotImplementedError

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The expected image in [0, 1], for display."""
        return self.image(params).clamp(0, 1)


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
            return (noise.rand_like(x) < x).to(x.dtype)
        return x

    def nll(self, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(params.float(), target.float(), reduction="none")
        return _sum_per_sample(bce)

    @property
    def measures_pixels(self) -> bool:
        """Binarised data is a mass over {0, 1} (the binarised-MNIST tables); grey levels are not."""
        return self.binarize == "dynamic"

    def discretised_nll(self, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.nll(params, target) if self.measures_pixels else super().discretised_nll(params, target)

    def image(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params.float())


class _Continuous(Likelihood):
    """Decoder outputs a location through an output activation; data may be mapped to [-1, 1]."""

    def __init__(self, output: str = "sigmoid") -> None:
        super().__init__()
        if output not in ("sigmoid", "tanh", "identity", "signed"):
            raise ValueError(f"likelihood.output must be sigmoid, tanh, identity or signed, got {output!r}")
        self.output = output

    def prepare(self, x: torch.Tensor, stochastic: bool = False) -> torch.Tensor:
        return x * 2 - 1 if self.output in ("tanh", "signed") else x

    def location(self, params: torch.Tensor) -> torch.Tensor:
        params = params.float()
        if self.output == "sigmoid":
            return torch.sigmoid(params)
        if self.output == "tanh":
            return torch.tanh(params)
        return params

    def to_unit(self, values: torch.Tensor) -> torch.Tensor:
        """Target-space values back to [0, 1] (not clamped, so gradients flow)."""
        return (values + 1) / 2 if self.output in ("tanh", "signed") else values

    def image(self, params: torch.Tensor) -> torch.Tensor:
        return self.to_unit(self.location(params))


class _LocationScale(_Continuous):
    """Shared by Gaussian and Laplace: a scale that is fixed or learned (one scalar, as its log)."""

    def __init__(self, scale: float = 1.0, learn_scale: bool = False, output: str = "sigmoid") -> None:
        super().__init__(output)
        if scale <= 0:
            raise ValueError(f"likelihood.scale must be positive, got {scale}")
        log_scale = torch.tensor(math.log(scale))
        if learn_scale:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    @property
    def measures_pixels(self) -> bool:
        """Whether the 8-bit mass is defined: the distribution has a CDF (torch's Student-t has none)."""
        kind = type(self.distribution(torch.zeros(1)))
        return kind.cdf is not torch.distributions.Distribution.cdf

    def distribution(self, params: torch.Tensor) -> torch.distributions.Distribution:
        raise NotImplementedError

    def discretised_nll(self, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The mass of each pixel's 8-bit bin under the density (the edge bins reach to infinity,
        as in PixelCNN++), in float64 and reflected into the lower tail, where the CDF is exact."""
        if not self.measures_pixels:
            return super().discretised_nll(params, target)
        levels = self.PIXEL_LEVELS - 1
        half = (1.0 if self.output in ("tanh", "signed") else 0.5) / levels  # half a bin in target space
        distribution = self.distribution(params.double())
        loc, x = distribution.mean, target.double()
        reflect = x > loc  # symmetric: P(l < X < u) = P(2 loc - u < X < 2 loc - l)
        lower = torch.where(reflect, 2 * loc - x - half, x - half)
        upper = torch.where(reflect, 2 * loc - x + half, x + half)
        level = torch.round(self.to_unit(x) * levels)
        lower_open = torch.where(reflect, level == levels, level == 0)  # the bin's open end is this side
        upper_open = torch.where(reflect, level == 0, level == levels)
        cdf_lower = torch.where(lower_open, torch.zeros_like(x), distribution.cdf(lower))
        cdf_upper = torch.where(upper_open, torch.ones_like(x), distribution.cdf(upper))
        mass = cdf_upper - cdf_lower
        # a bin far in the tail underflows: its mass is then the density at x times the bin width
        log_mass = torch.where(
            mass > 1e-300, mass.clamp_min(1e-300).log(), distribution.log_prob(x) + math.log(2 * half)
        )
        return _sum_per_sample(-log_mass).float()


class Gaussian(_LocationScale):
    """N(x; mu(z), sigma^2) per pixel."""

    def distribution(self, params: torch.Tensor) -> torch.distributions.Normal:
        location = self.location(params).to(params.dtype)
        return torch.distributions.Normal(location, self.log_scale.to(params.dtype).exp().expand_as(location))

    def nll(self, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_sigma = self.log_scale.float()
        z = (target.float() - self.location(params)) * torch.exp(-log_sigma)
        return _sum_per_sample(0.5 * z.square() + log_sigma + 0.5 * math.log(2 * math.pi))


class Laplace(_LocationScale):
    """Laplace(x; mu(z), b) per pixel: the L1 loss |x - mu| / b, plus its normaliser log(2b)."""

    def distribution(self, params: torch.Tensor) -> torch.distributions.Laplace:
        location = self.location(params).to(params.dtype)
        return torch.distributions.Laplace(location, self.log_scale.to(params.dtype).exp().expand_as(location))

    def nll(self, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_b = self.log_scale.float()
        distance = (target.float() - self.location(params)).abs() * torch.exp(-log_b)
        return _sum_per_sample(distance + log_b + math.log(2))


class Perceptual(_Continuous):
    """Distance in a frozen feature network's activations, optionally plus a pixel term.

    Per image: sum over layers of ``weight * mean squared feature difference * pixels``, where
    ``pixels`` = C * H * W of the image, so the term has the size of a per-pixel sum and KL weights
    keep their meaning across image sizes. Not a normalised likelihood: ``neg_elbo`` with it is a
    loss, not a bound. The network is built on first use (loading a model to sample needs no
    weights), is never saved with the model, never trained, and always in eval mode.
    """

    def __init__(
        self,
        network_factory,
        layers: list[str],
        layer_weights: list[float],
        resize: int | None = 256,
        imagenet_normalize: bool = True,
        output: str = "sigmoid",
        pixel: Likelihood | None = None,
        pixel_weight: float = 1.0,
    ) -> None:
        super().__init__(output)
        if len(layers) != len(layer_weights):
            raise ValueError(f"{len(layers)} perceptual layers but {len(layer_weights)} layer weights")
        self._factory = network_factory
        self.__dict__["_network"] = None  # kept out of nn.Module's registry: never saved or optimised
        self.layers, self.layer_weights = list(layers), list(layer_weights)
        self.resize, self.imagenet_normalize = resize, imagenet_normalize
        self.pixel, self.pixel_weight = pixel, pixel_weight
        self.register_buffer("imagenet_mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("imagenet_std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    @property
    def network(self) -> nn.Module:
        if self._network is None:
            network = self._factory().eval().requires_grad_(False)
            self.__dict__["_network"] = network.to(self.imagenet_mean.device)
        return self._network

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        if self._network is not None:
            self._network._apply(fn, *args, **kwargs)
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        if self._network is not None:
            self._network.eval()
        return self

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The configured layers' activations of [0, 1] images."""
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        if self.resize and images.shape[-1] != self.resize:
            images = F.interpolate(images, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        if self.imagenet_normalize:
            images = (images - self.imagenet_mean) / self.imagenet_std
        return self.network(images, self.layers)

    def nll(self, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        reconstruction = self.to_unit(self.location(params))
        if getattr(self.network, "is_lpips", False):  # LPIPS: weight * pixels * distance (the LDM recipe)
            distance = self.network(reconstruction, self.to_unit(target.float()))
            total = self.layer_weights[0] * target[0].numel() * distance
            if self.pixel is not None:
                total = total + self.pixel_weight * self.pixel.nll(params, target)
            return total
        with torch.no_grad():
            reference = self.features(self.to_unit(target.float()))
        produced = self.features(reconstruction)
        pixels = target[0].numel()
        total = torch.zeros(len(target), device=target.device)
        for name, weight in zip(self.layers, self.layer_weights, strict=True):
            difference = (produced[name].float() - reference[name].float()).square()
            total = total + weight * pixels * difference.flatten(1).mean(1)
        if self.pixel is not None:
            total = total + self.pixel_weight * self.pixel.nll(params, target)
        return total


# continuous: images as real values, a location and a scale (what the introspective objectives compare)
LIKELIHOODS: Registry = Registry("likelihood", "likelihood.name", capabilities=("continuous",), section="likelihood")


@LIKELIHOODS.register("bernoulli", summary="binary cross-entropy on logits (binarized or grey-level targets)")
def _bernoulli(config: LikelihoodConfig, trust_code: bool) -> Likelihood:
    return Bernoulli(config.binarize)


def _location_scale(cls: type[_LocationScale]):
    def build(config: LikelihoodConfig, trust_code: bool) -> Likelihood:
        return cls(scale=config.scale, learn_scale=config.learn_scale, output=config.output)

    return build


LIKELIHOODS.add(
    "gaussian",
    _location_scale(Gaussian),
    summary="squared error with a fixed or learned scale (likelihood.scale)",
    capabilities={"continuous"},
    tiny={"likelihood.scale": 0.3, "likelihood.learn_scale": True},
)
LIKELIHOODS.add(
    "laplace",
    _location_scale(Laplace),
    summary="absolute error (L1) with a fixed or learned scale",
    capabilities={"continuous"},
    tiny={"likelihood.output": "tanh"},
)


@LIKELIHOODS.register(
    "perceptual",
    options=PerceptualConfig,
    summary="distance of a feature network's activations (VGG, LPIPS, a classifier or your own), plus a pixel term",
    capabilities={"continuous"},
    tiny={  # with a small network of the test's own (likelihood.perceptual.network) on layers 1 and 3
        "likelihood.perceptual.layers": ["1", "3"],
        "likelihood.perceptual.layer_weights": [1.0, 0.5],
        "likelihood.perceptual.resize": None,
        "likelihood.perceptual.random_weights": True,
    },
)
def _perceptual(config: LikelihoodConfig, trust_code: bool) -> Likelihood:
    options = config.perceptual
    pixel = create_likelihood(replace(config, name=options.pixel)) if options.pixel != "none" else None
    factory = None
    if is_code_reference(options.network):  # imported now, with the caller's trust; built on first use
        factory = import_object(options.network, "likelihood.perceptual.network", trust_code)
    return Perceptual(
        partial(_feature_network, options.network, options.weights, options.random_weights, factory),
        options.layers,
        options.layer_weights,
        options.resize,
        options.imagenet_normalize,
        config.output,
        pixel,
        options.pixel_weight,
    )


def create_likelihood(config: LikelihoodConfig, *, trust_code: bool = False) -> Likelihood:
    """The likelihood named by ``config.name``; ``trust_code`` allows a user perceptual network
    (``package.module:factory``) to be imported."""
    return LIKELIHOODS.get(config.name).factory(config, trust_code)


def _feature_network(name: str, weights: str | None, random_weights: bool, factory=None) -> nn.Module:
    from vaekit.features.hooks import user_network
    from vaekit.features.vgg import VGGFeatures, pretrained_vgg

    if factory is not None:
        return user_network(name, factory, weights, random_weights)
    if name == "classifier":  # a domain network from `vaekit train-classifier` (e.g. CelebA attributes)
        from vaekit.features.classifier import load_classifier
        from vaekit.features.hooks import NamedLayerFeatures

        if weights is None:
            raise ValueError(
                "likelihood.perceptual.network classifier needs likelihood.perceptual.weights: "
                "a file written by `vaekit train-classifier`"
            )
        return NamedLayerFeatures(load_classifier(weights))
    if name in ("lpips-vgg", "lpips-alex"):
        from vaekit.features.lpips import LPIPS, pretrained_lpips

        backbone = name.split("-")[1]
        return LPIPS(backbone) if random_weights else pretrained_lpips(backbone, weights)
    if name not in ("vgg16", "vgg19"):
        raise ValueError(
            f"unknown perceptual network {name!r}: use vgg16, vgg19, lpips-vgg, lpips-alex, classifier "
            "or package.module:factory"
        )
    if random_weights:
        return VGGFeatures(name)
    return pretrained_vgg(name, weights)
