"""LPIPS (Zhang et al. 2018), v0.1: unit-normalised backbone features, squared differences
weighted per channel by the public linear layers (keys ``lin{i}.model.1.weight``), averaged over
space and summed over layers. Backbones: torchvision VGG16 or AlexNet features."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vaekit.features.alexnet import AlexNetFeatures, pretrained_alexnet
from vaekit.features.vgg import VGGFeatures, pretrained_vgg
from vaekit.features.weights import LPIPS_ALEX, LPIPS_VGG, load_pretrained, locate, read_state_dict

# where each backbone's LPIPS stages end (exclusive indices into ``features``) and their widths
STAGES = {"vgg": ((4, 9, 16, 23, 30), (64, 128, 256, 512, 512)), "alex": ((2, 5, 8, 10, 12), (64, 192, 384, 256, 256))}
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


class _Linear(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))


class LPIPS(nn.Module):
    """Perceptual distance between [0, 1] image batches: ``(N,)``, 0 for identical images."""

    is_lpips = True  # the perceptual likelihood uses it as a distance, not as named layers

    def __init__(self, backbone: str = "vgg", network: nn.Module | None = None) -> None:
        super().__init__()
        if backbone not in STAGES:
            raise ValueError(f"unknown LPIPS backbone {backbone!r}: use vgg or alex")
        self.backbone = backbone
        self.net = (
            network if network is not None else (VGGFeatures("vgg16") if backbone == "vgg" else AlexNetFeatures())
        )
        ends, widths = STAGES[backbone]
        self.ends = ends
        for i, width in enumerate(widths):
            self.add_module(f"lin{i}", _Linear(width))
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        self.eval().requires_grad_(False)

    def _stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs, start = [], 0
        for end in self.ends:
            for layer in self.net.features[start:end]:
                x = layer(x)
            outputs.append(x)
            start = end
        return outputs

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
        x = ((x.float() * 2 - 1) - self.shift) / self.scale
        y = ((y.float() * 2 - 1) - self.shift) / self.scale
        total = torch.zeros(x.shape[0], device=x.device)
        for i, (fx, fy) in enumerate(zip(self._stages(x), self._stages(y), strict=True)):
            fx = fx / (fx.square().sum(1, keepdim=True).sqrt() + 1e-10)
            fy = fy / (fy.square().sum(1, keepdim=True).sqrt() + 1e-10)
            weighted = getattr(self, f"lin{i}").model((fx - fy).square())
            total = total + weighted.mean((1, 2, 3))
        return total

    def linear_state_dict(self) -> dict[str, torch.Tensor]:
        """Only the linear layers, with the public file's key names."""
        return {k: v for k, v in self.state_dict().items() if k.startswith("lin")}


def pretrained_lpips(
    backbone: str = "vgg", backbone_path: str | Path | None = None, linear_path: str | Path | None = None
) -> LPIPS:
    """LPIPS with ImageNet backbone weights and the public v0.1 linear layers."""
    network = pretrained_vgg("vgg16", backbone_path) if backbone == "vgg" else pretrained_alexnet(backbone_path)
    metric = LPIPS(backbone, network)
    file = locate(LPIPS_VGG if backbone == "vgg" else LPIPS_ALEX, linear_path)
    linear = nn.ModuleDict({f"lin{i}": getattr(metric, f"lin{i}") for i in range(len(metric.ends))})
    load_pretrained(linear, read_state_dict(file), str(file))
    return metric.eval().requires_grad_(False)
