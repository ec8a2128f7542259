"""AlexNet convolutional features with torchvision's layer indices (``alexnet-owt-7be5be79.pth``)."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from vaekit.features.weights import ALEXNET, load_pretrained, locate, read_state_dict


class AlexNetFeatures(nn.Module):
    """``features`` of torchvision's AlexNet."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
        )


def pretrained_alexnet(path: str | Path | None = None) -> AlexNetFeatures:
    network = AlexNetFeatures()
    file = locate(ALEXNET, path)
    load_pretrained(network, read_state_dict(file), str(file), ignore=("classifier.",))
    return network.eval().requires_grad_(False)
