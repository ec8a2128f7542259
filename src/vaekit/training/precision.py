"""Numeric precision policy: fp32, bf16 autocast (CPU and CUDA), fp16 autocast with a loss scaler
(CUDA), plus gradient clipping. Objectives call ``autocast()`` and ``minimize()``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import torch

PRECISIONS = ("fp32", "bf16", "fp16")


class Precision:
    def __init__(self, mode: str, device: torch.device, grad_clip: float | None = None) -> None:
        if mode not in PRECISIONS:
            raise ValueError(f"unknown precision {mode!r}: use fp32, bf16 or fp16")
        if mode == "fp16" and device.type != "cuda":
            raise ValueError("precision fp16 needs a CUDA device (use bf16 on CPU)")
        self.mode, self.device, self.grad_clip = mode, device, grad_clip
        self.scaler = torch.amp.GradScaler("cuda") if mode == "fp16" else None

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.mode == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.mode == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def minimize(
        self, loss: torch.Tensor, optimizers: torch.optim.Optimizer | list[torch.optim.Optimizer], parameters: Iterable
    ) -> None:
        """Backward ``loss`` and step the optimiser(s) (scaled for fp16, clipped if configured).
        Gradients are freed afterwards, so nothing carries over into another phase's update."""
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            if self.grad_clip:
                torch.nn.utils.clip_grad_norm_(list(parameters), self.grad_clip)
            for optimizer in optimizers:
                optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            if self.grad_clip:
                for optimizer in optimizers:
                    self.scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(list(parameters), self.grad_clip)
            for optimizer in optimizers:
                self.scaler.step(optimizer)
            self.scaler.update()
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
