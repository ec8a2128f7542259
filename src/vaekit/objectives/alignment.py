"""Aligning the latent to a frozen vision foundation model's patch features.

VA-VAE (Yao et al. 2025): the latent, through a trainable 1x1 projection to the features' width,
should point where the features point (a cosine margin, ``relu(1 - margin_cos - cos(z_i, f_i))``
per position) and relate positions as the features do (a distance-matrix margin,
``relu(|cos(z_i, z_j) - cos(f_i, f_j)| - margin_distance)`` over pairs of positions). ``repa`` (the
REPA-E style) is the plain negative cosine similarity per position. The projection is trained with
the model, kept in checkpoints and never exported; the feature network is frozen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vaekit.config import Config, ConfigError
from vaekit.engine.optimizers import make_optimizer
from vaekit.features.foundation import foundation_features
from vaekit.models.base import VAE


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


class AlignmentTerm:
    """The projection, its optimiser and the frozen feature network; ``loss(z, images)``."""

    def __init__(self, model: VAE, config: Config, trust_code: bool = False) -> None:
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

    def _feature_width(self, device: torch.device) -> int:
        probe = torch.zeros(1, 3, 32, 32, device=device)
        return int(self.features(probe).shape[1])

    def loss(self, z: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
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
