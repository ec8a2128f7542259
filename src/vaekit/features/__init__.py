"""Pretrained feature networks (VGG, AlexNet, FID Inception, a small domain classifier) whose
parameter names match the public checkpoints, and the code that finds and checks those files."""

from vaekit.features.weights import PretrainedWeights, WeightsNotFound, locate

__all__ = ["PretrainedWeights", "WeightsNotFound", "locate"]
