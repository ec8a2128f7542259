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
        self.register_buffer("matrix", torch.eye(width), persistent=False)  # L^-1 of the running covariance
        self._matrix_of: tuple[int, int] | None = None  # the covariance (version, storage) it was made from
        self.register_load_state_dict_post_hook(_refresh_after_loading)

    def train(self, mode: bool = True) -> Whitening:
        super().train(mode)
        return self._refresh()

    def _refresh(self) -> Whitening:
        """The matrix of the running covariance, remade when it moved: on leaving training and after
        loading, rather than in a traced forward (ONNX has no Cholesky), so an exported encoder
        multiplies by a constant."""
        covariance = self.running_covariance
        if self._matrix_of != (covariance._version, covariance.data_ptr()):
            with torch.no_grad():
                identity = torch.eye(len(covariance), device=covariance.device)
                factor = torch.linalg.cholesky(covariance.float() + self.eps * identity)
                self.matrix.copy_(torch.linalg.solve_triangular(factor, identity, upper=False))
            self._matrix_of = (covariance._version, covariance.data_ptr())
        return self

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        with torch.autocast(tokens.device.type, enabled=False):  # statistics in float32
            return self._whiten(tokens.reshape(-1, tokens.shape[-1]).float()).reshape(tokens.shape).to(tokens.dtype)

    def _whiten(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or len(x) < 2:
            return (x - self.running_mean) @ self._refresh().matrix.T
        mean = x.mean(0)
        centred = x - mean
        covariance = centred.T @ centred / (len(x) - 1)
        with torch.no_grad():
            self.running_mean.lerp_(mean.detach(), self.momentum)
            self.running_covariance.lerp_(covariance.detach(), self.momentum)
        factor = torch.linalg.cholesky(covariance + self.eps * torch.eye(len(mean), device=x.device))
        return torch.linalg.solve_triangular(factor, centred.T, upper=False).T


def _refresh_after_loading(module: Whitening, incompatible_keys) -> None:
    module._refresh()
