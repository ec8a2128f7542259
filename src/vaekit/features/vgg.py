"""VGG16 / VGG19 convolutional features with torchvision's layer indices (``features.N``), so that
``vgg16-397923af.pth`` / ``vgg19-dcbb9e9d.pth`` load unchanged (their classifier keys are ignored)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vaekit.features.weights import VGG16, VGG19, load_pretrained, locate, read_state_dict

CONFIGS = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names(variant: str) -> list[str]:
    """Names of the ``features`` entries: conv1_1, relu1_1, ..., pool1, ..."""
    names, block, index = [], 1, 1
    for item in CONFIGS[variant]:
        if item == "M":
            names.append(f"pool{block}")
            block, index = block + 1, 1
        else:
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
            index += 1
    return names


class VGGFeatures(nn.Module):
    """``features`` of torchvision's VGG; ``forward`` returns the named layers' activations."""

    def __init__(self, variant: str = "vgg16") -> None:
        super().__init__()
        if variant not in CONFIGS:
            raise ValueError(f"unknown VGG variant {variant!r}: use vgg16 or vgg19")
        self.variant = variant
        layers: list[nn.Module] = []
        channels = 3
        for item in CONFIGS[variant]:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=False)]
                channels = item
        self.features = nn.Sequential(*layers)
        self.names = layer_names(variant)

    def forward(self, x: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
        unknown = set(layers) - set(self.names)
        if unknown:
            raise ValueError(f"unknown {self.variant} layers {sorted(unknown)}; e.g. relu1_1, relu2_1, relu3_1")
        wanted, out = set(layers), {}
        last = max(self.names.index(name) for name in layers)
        for name, layer in zip(self.names[: last + 1], self.features, strict=False):
            x = layer(x)
            if name in wanted:
                out[name] = x
        return out


def pretrained_vgg(variant: str = "vgg16", path: str | Path | None = None) -> VGGFeatures:
    """VGG features with torchvision's ImageNet weights (see ``features.weights.locate``), frozen."""
    spec = {"vgg16": VGG16, "vgg19": VGG19}[variant]
    network = VGGFeatures(variant)
    file = locate(spec, path)
    load_pretrained(network, read_state_dict(file), str(file), ignore=("classifier.",))
    return network.eval().requires_grad_(False)
