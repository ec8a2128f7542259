"""Layers shared by the architectures."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "silu": nn.SiLU}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}: use one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def norm2d(name: str, channels: int) -> nn.Module:
    if name == "none":
        return nn.Identity()
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "group":
        return nn.GroupNorm(min(32, channels), channels)
    raise ValueError(f"unknown norm {name!r}: use none, batch or group")


def conv_down(c_in: int, c_out: int, kernel: int, norm: str, act: str) -> nn.Sequential:
    """Stride-2 conv + norm + activation; halves the size (rounding as ``down_size``)."""
    return nn.Sequential(
        Conv2d(c_in, c_out, kernel, stride=2, padding=(kernel - 1) // 2, bias=norm == "none"),
        norm2d(norm, c_out),
        activation(act),
    )


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters) that runs as one matrix product on the CPU when its output
    map has at most ``MATMUL_PIXELS`` pixels: there oneDNN's weight gradient is several times
    slower than unfold + matmul (e.g. 512->1024 channels, 3x3 -> 1x1: 240 ms vs 60 ms per step)."""

    MATMUL_PIXELS = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        general = x.device.type != "cpu" or self.groups != 1 or self.padding_mode != "zeros"
        if general or isinstance(self.padding, str):
            return super().forward(x)
        out_h, out_w = (
            (size + 2 * pad - dil * (k - 1) - 1) // stride + 1
            for size, pad, dil, k, stride in zip(
                x.shape[-2:], self.padding, self.dilation, self.kernel_size, self.stride, strict=True
            )
        )
        if out_h * out_w > self.MATMUL_PIXELS:
            return super().forward(x)
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)  # (B, C*k*k, L)
        weight = self.weight.flatten(1)
        if torch.is_autocast_enabled("cpu"):
            dtype = torch.get_autocast_dtype("cpu")
            cols, weight = cols.to(dtype), weight.to(dtype)
        out = (weight @ cols).view(x.shape[0], self.out_channels, out_h, out_w)
        return out if self.bias is None else out + self.bias.to(out.dtype).view(1, -1, 1, 1)


def down_size(size: int, kernel: int) -> int:
    """Spatial size after ``conv_down``."""
    return (size + 2 * ((kernel - 1) // 2) - kernel) // 2 + 1


def conv_up(c_in: int, c_out: int, kernel: int, size_in: int, size_out: int, norm: str, act: str) -> nn.Sequential:
    """Stride-2 transposed conv + norm + activation from ``size_in`` to exactly ``size_out``."""
    padding = (kernel - 1) // 2
    extra = size_out - ((size_in - 1) * 2 - 2 * padding + kernel)
    if extra not in (0, 1):
        raise ValueError(f"cannot upsample {size_in} -> {size_out} with kernel {kernel}")
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, kernel, stride=2, padding=padding, output_padding=extra, bias=norm == "none"),
        norm2d(norm, c_out),
        activation(act),
    )


class LatentHead(nn.Module):
    """A linear layer that outputs the ``parameters`` tensors of a flat latent: ``(mean, logvar)`` of
    a Gaussian latent (2), the latent itself for the other kinds (1)."""

    def __init__(self, features: int, latent_dim: int, parameters: int = 2) -> None:
        super().__init__()
        self.parameters_per_latent = parameters
        self.linear = nn.Linear(features, parameters * latent_dim)

    def forward(self, h):
        return self.linear(h).chunk(self.parameters_per_latent, dim=1)
