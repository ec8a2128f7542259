"""Decorrelated batch normalisation: the layer that puts a fixed grid's cells under the data."""

from __future__ import annotations

import torch
from torch import nn


class Whitening(nn.Module):
    """Decorrelated batch normalisation (Huang et al. 2018) of ``(B, tokens, width)``: each channel
    centred and the channels decorrelated to unit variance (``L^-1`` of the covariance's Cholesky
    factor), from the batch in training and from running averages after. A fixed grid (FSQ) has its
    cells along the axes: correlated channels reach only the cells near a diagonal."""

    def __init__(self, width: int, momentum: float = 0.1, eps: float = 1e-4) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(width))
        self.register_buffer("running_covariance", torch.eye(width))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        with torch.autocast(tokens.device.type, enabled=False):  # statistics in float32
            return self._whiten(tokens.reshape(-1, tokens.shape[-1]).float()).reshape(tokens.shape).to(tokens.dtype)

    def _whiten(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and len(x) > 1:
            mean = x.mean(0)
            centred = x - mean
            covariance = centred.T @ centred / (len(x) - 1)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_covariance.lerp_(covariance.detach(), self.momentum)
        else:
            mean, covariance = self.running_mean, self.running_covariance
        identity = torch.eye(len(mean), device=x.device)
        factor = torch.linalg.cholesky(covariance + self.eps * identity)
        return torch.linalg.solve_triangular(factor, (x - mean).T, upper=False).T
