"""A frozen vision foundation model's patch features, for aligning latents to them (VA-VAE, REPA-E).

``network`` names a ``transformers`` checkpoint (a Hub id such as ``facebook/dinov2-small`` or a
local folder; SigLIP's vision tower too) or, with trusted code, a ``package.module:factory`` whose
module maps [0, 1] images to ``(N, D, h, w)`` features. ``random_weights`` builds the checkpoint's
architecture from its ``config.json`` alone, untrained: for tests, never a silent fallback.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vaekit.optional import require
from vaekit.plugins import import_object, is_code_reference

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PatchFeatures(nn.Module):
    """[0, 1] images -> ``(N, D, h, w)`` patch tokens of a transformers vision model (class and
    register tokens dropped), inputs resized to ``image_size`` and ImageNet-normalised. Frozen."""

    def __init__(self, model: nn.Module, image_size: int, patch_size: int) -> None:
        super().__init__()
        self.model, self.image_size, self.patch_size = model.eval().requires_grad_(False), image_size, patch_size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> PatchFeatures:
        super().train(mode)
        self.model.eval()  # always: dropout and friends stay off
        return self

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = images.float()
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        if images.shape[-1] != self.image_size or images.shape[-2] != self.image_size:
            size = (self.image_size, self.image_size)
            images = F.interpolate(images, size=size, mode="bicubic", align_corners=False, antialias=True)
        tokens = self.model(pixel_values=(images - self.mean) / self.std).last_hidden_state
        side = self.image_size // self.patch_size
        patches = tokens[:, -side * side :]  # the class (and register) tokens come first
        return patches.transpose(1, 2).reshape(len(images), -1, side, side)


def foundation_features(
    network: str, image_size: int | None = None, random_weights: bool = False, trust_code: bool = False
) -> nn.Module:
    """The frozen feature network ``network`` names (see the module's docstring)."""
    if is_code_reference(network):
        factory = import_object(network, "objective.alignment.network", trust_code)
        return factory().eval().requires_grad_(False)
    transformers = require("transformers", "align", "objective.alignment (a transformers vision model)")
    try:
        config = transformers.AutoConfig.from_pretrained(network)
        vision = getattr(config, "vision_config", None) or config  # SigLIP / CLIP: the vision tower's
        if random_weights:
            model = transformers.AutoModel.from_config(config)
        else:
            model = transformers.AutoModel.from_pretrained(network)
    except (OSError, ValueError) as err:
        raise ValueError(
            f"objective.alignment.network: cannot load {network!r} ({str(err).splitlines()[0]}); give a local "
            "folder holding the checkpoint, or a Hub id this machine can download"
        ) from None
    model = getattr(model, "vision_model", model)
    patch = int(vision.patch_size)
    size = image_size or int(getattr(vision, "image_size", 224))
    size = max(patch, math.floor(size / patch) * patch)
    return PatchFeatures(model, size, patch)
