"""The EQ-VAE regulariser (Kouzelis et al. 2025): decoding a transformed latent should give the
transformed image. With ``probability`` per step, one transform is drawn (a downscale by one of
``scales``, or a rotation by a multiple of 90 degrees), applied to the latent sample z and to the
target image x, and ``weight * NLL(x_t | decode(z_t))`` is added to the objective's loss.

Two numbers are logged: ``eq_loss`` (the weighted term optimised, 0 on steps it was not drawn) and
``eq_error``, the mean squared difference between ``decode(t(z))`` and ``t(decode(z))`` (0 for a
decoder that commutes with the transform, whatever its reconstructions are like).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vaekit.config import Config, ConfigError
from vaekit.engine.precision import Precision
from vaekit.engine.step import StepInfo
from vaekit.models.base import VAE
from vaekit.objectives.terms import TERMS, Term, TermInputs
from vaekit.schema import bounded, non_negative


@dataclass(frozen=True)
class EquivarianceConfig:
    """EQ-VAE's regulariser: decoding a downscaled / rotated latent should give the same transform
    of the image (objectives with spatial latents; see objectives/equivariance.py)."""

    enabled: bool = False
    weight: float = non_negative(1.0)
    probability: float = bounded(0.5, 0.0, 1.0)  # share of steps that draw a transform
    scales: list[float] = bounded([0.5, 0.75], 0.0, 1.0, above=True)  # downscales of the latent (and image)
    rotations: bool = True  # also rotations by 90, 180, 270 degrees


@dataclass(frozen=True)
class Transform:
    """A downscale to ``size`` latent pixels (per side), or ``quarter_turns`` rotations by 90 degrees."""

    size: tuple[int, int] | None = None
    quarter_turns: int = 0

    def __call__(self, maps: torch.Tensor, factor: int = 1) -> torch.Tensor:
        """``maps`` (N, C, H, W) transformed; ``factor``: pixels per latent pixel (images: the model's)."""
        if self.size is not None:
            size = (self.size[0] * factor, self.size[1] * factor)
            return F.interpolate(maps.float(), size=size, mode="bilinear", align_corners=False, antialias=True)
        return torch.rot90(maps, self.quarter_turns, dims=(-2, -1))


@TERMS.register(
    "equivariance",
    options=EquivarianceConfig,
    summary="EQ-VAE: decoding a downscaled or rotated latent gives the same transform of the image",
    objectives={"elbo"},
    logs=("eq_loss", "eq_error"),
    capabilities={"spatial-latent"},
    tiny={"objective.equivariance.probability": 1.0},
)
class EquivarianceTerm(Term):
    """Draws the transform of a step and computes the term (see the module's docstring)."""

    def __init__(self, model: VAE, config: Config, precision: Precision | None = None, trust_code: bool = False):
        super().__init__(model, config, precision)
        options = config.objective.equivariance
        if len(model.latent_shape) != 3:
            raise ConfigError(
                "objective.equivariance: needs spatial latents (C, H, W) such as autoencoder-kl's, "
                f"this model's latent is {tuple(model.latent_shape)}"
            )
        self.options, self.seed = options, config.train.seed

    def loss(self, inputs: TermInputs, info: StepInfo) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        zero = torch.zeros((), device=inputs.batch.device)
        transform = self.draw(info.step)
        if transform is None:
            return None, {"eq_loss": zero, "eq_error": zero}
        with self.precision.autocast():
            term, error = self.transformed_loss(inputs.z, inputs.params, inputs.target, transform)
        return term, {"eq_loss": term.detach(), "eq_error": error}

    def draw(self, step: int) -> Transform | None:
        """The transform of ``step`` (None on steps without one): a pure function of (seed, step),
        so that a resumed run draws the same ones."""
        options = self.options
        rng = random.Random(self.seed * 1_000_003 + step)
        if rng.random() >= options.probability:
            return None
        choices: list[Transform] = [Transform(quarter_turns=k) for k in (1, 2, 3)] if options.rotations else []
        _, height, width = self.model.latent_shape
        for scale in options.scales:
            size = (max(1, round(height * scale)), max(1, round(width * scale)))
            if size != (height, width):
                choices.append(Transform(size=size))
        return rng.choice(choices) if choices else None

    def transformed_loss(
        self, z: torch.Tensor, params: torch.Tensor, target: torch.Tensor, transform: Transform
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(the weighted term to add to the loss, the equivariance error) for latent samples ``z``,
        their decoded ``params`` and the ``target`` batch."""
        likelihood = self.model.likelihood
        factor = target.shape[-1] // z.shape[-1]  # image pixels per latent pixel
        moved = self.model.decode(transform(z))
        term = self.options.weight * likelihood.nll(moved, transform(target, factor)).float().mean()
        with torch.no_grad():
            expected = transform(likelihood.image(params).float(), factor)
            error = (likelihood.image(moved).float() - expected).square().mean()
        return term, error
