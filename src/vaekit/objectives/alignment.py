"""Aligning the latent to a frozen vision foundation model's patch features.

VA-VAE (Yao et al. 2025): the latent, through a trainable 1x1 projection to the features' width,
should point where the features point (a cosine margin, ``relu(1 - margin_cos - cos(z_i, f_i))``
per position) and relate positions as the features do (a distance-matrix margin,
``relu(|cos(z_i, z_j) - cos(f_i, f_j)| - margin_distance)`` over pairs of positions). ``repa`` (the
REPA-E style) is the plain negative cosine similarity per position. The projection is trained with
the model, kept in checkpoints and never exported; the feature network is frozen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vaekit.config import Config, ConfigError
from vaekit.engine.optimizers import make_optimizer
from vaekit.engine.precision import Precision
from vaekit.engine.step import StepInfo
from vaekit.features.foundation import foundation_features
from vaekit.models.base import VAE
from vaekit.objectives.terms import TERMS, Term, TermInputs
from vaekit.schema import bounded, non_negative, positive


@dataclass(frozen=True)
class AlignmentConfig:
    """VA-VAE / REPA-E: the latent aligned to a frozen vision model's patch features (objectives with
    spatial latents; see objectives/alignment.py)."""

    enabled: bool = False
    network: str = "facebook/dinov2-small"  # transformers checkpoint (Hub id or folder) or package.module:factory
    random_weights: bool = False  # the network's architecture untrained (tests; never for real use)
    image_size: int | None = positive(224, 4096)  # the network's input side (a multiple of its patch)
    loss: Literal["vf", "repa"] = "vf"  # vf: VA-VAE's cosine + distance-matrix margins; repa: -cosine
    weight: float = non_negative(0.5)
    margin_cos: float = bounded(0.5, 0.0, 2.0)
    margin_distance: float = bounded(0.25, 0.0, 2.0)


def vf_loss(projected: torch.Tensor, features: torch.Tensor, margin_cos: float, margin_distance: float) -> torch.Tensor:
    """VA-VAE's loss between ``(N, D, h, w)`` projected latents and features of the same shape."""
    z = F.normalize(projected.flatten(2), dim=1)  # (N, D, h*w), unit vectors per position
    f = F.normalize(features.flatten(2), dim=1)
    cosine = F.relu(1 - margin_cos - (z * f).sum(1)).mean()
    z_similarity, f_similarity = z.transpose(1, 2) @ z, f.transpose(1, 2) @ f  # (N, h*w, h*w)
    distance = F.relu((z_similarity - f_similarity).abs() - margin_distance).mean()
    return cosine + distance


def repa_loss(projected: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """REPA-E style: minus the mean cosine similarity per position."""
    return -F.cosine_similarity(projected.flatten(2), features.flatten(2), dim=1).mean()


@TERMS.register(
    "alignment",
    options=AlignmentConfig,
    summary="VA-VAE / REPA-E: the latent aligned to a frozen vision model's patch features",
    objectives={"elbo"},
    logs=("align_loss",),
    capabilities={"spatial-latent"},
)
class AlignmentTerm(Term):
    """The projection (learning in the objective's own update), its optimiser and the frozen feature
    network; its loss is ``weight`` times the alignment of latent samples to the network's features."""

    def __init__(self, model: VAE, config: Config, precision: Precision, trust_code: bool = False) -> None:
        super().__init__(model, config, precision)
        options = config.objective.alignment
        if len(model.latent_shape) != 3:
            raise ConfigError(
                "objective.alignment: needs spatial latents (C, H, W), "
                f"this model's latent is {tuple(model.latent_shape)}"
            )
        self.options = options
        device = next(model.parameters()).device
        self.features = foundation_features(options.network, options.image_size, options.random_weights, trust_code)
        self.features = self.features.to(device)
        width = self._feature_width(device)
        self.projection = nn.Conv2d(model.latent_shape[0], width, 1).to(device)
        self.optimizer = make_optimizer(self.projection.parameters(), config)
        self.optimizers["alignment"] = self.joint_optimizer = self.optimizer

    def loss(self, inputs: TermInputs, info: StepInfo) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = self.aligned(inputs.z, inputs.batch)
        return loss, {"align_loss": loss.detach()}

    def state_dict(self) -> dict:
        return {"alignment_projection": self.projection.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.projection.load_state_dict(state["alignment_projection"])

    def _feature_width(self, device: torch.device) -> int:
        probe = torch.zeros(1, 3, 32, 32, device=device)
        return int(self.features(probe).shape[1])

    def aligned(self, z: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """The weighted alignment loss of latent samples ``z`` of [0, 1] ``images``."""
        features = self.features(images).float()
        projected = self.projection(z.float())
        if features.shape[-2:] != projected.shape[-2:]:  # the features' grid brought to the latent's
            features = F.interpolate(features, size=projected.shape[-2:], mode="bilinear", align_corners=False)
        options = self.options
        if options.loss == "repa":
            raw = repa_loss(projected, features)
        else:
            raw = vf_loss(projected, features, options.margin_cos, options.margin_distance)
        return options.weight * raw
