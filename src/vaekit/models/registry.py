"""The architectures' registry; each architecture's file registers itself in it."""

from __future__ import annotations

from vaekit.registry import Registry

# images: built for (C, H, W) data at config.data.image_size; user-networks: the networks come from
# the user (VAE.from_modules); batch-statistics: BatchNorm (a micro-batch normalises by its own
# statistics); latent-kinds: its encoder head takes any model.latent (else the Gaussian only);
# gradient-checkpointing: train.gradient_checkpointing works; spatial-latent: the latent is a (C, H, W)
# map (objective.equivariance and objective.alignment need one); onnx, torchscript, diffusers:
# vaekit export writes it in that format (any other format is refused in one line); image-output: its
# decoder gives the image itself in a fixed range (a continuous likelihood, its output set to match)
ARCHITECTURES: Registry = Registry(
    "architecture",
    "model.arch",
    capabilities=(
        "images",
        "user-networks",
        "batch-statistics",
        "latent-kinds",
        "gradient-checkpointing",
        "spatial-latent",
        "onnx",
        "torchscript",
        "diffusers",
        "image-output",
    ),
    plugins=True,
    section="model",
)
