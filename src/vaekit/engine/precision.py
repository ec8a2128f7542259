"""How an update is made: precision (fp32, bf16 autocast on CPU and CUDA, fp16 autocast with a loss
scaler on CUDA), gradient accumulation over micro-batches, the gradient average across ranks (flat
after backward, or left to DDP for the parameters it holds) and clipping. Objectives call
``autocast()`` and ``minimize()``; ``engine.step.update`` runs one whole update."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import torch
from torch.nn.parallel import DistributedDataParallel

from vaekit.engine.distributed import average_gradients
from vaekit.schema import ConfigError

PRECISIONS = ("fp32", "bf16", "fp16")


class Precision:
    def __init__(
        self,
        mode: str,
        device: torch.device,
        grad_clip: float | None = None,
        *,
        accumulate: int = 1,
        world: int = 1,
        skip_nonfinite: bool = False,
    ) -> None:
        if mode not in PRECISIONS:
            raise ConfigError(f"train.precision: unknown {mode!r}; use fp32, bf16 or fp16")
        if mode == "fp16" and device.type != "cuda":
            raise ConfigError(f"train.precision: fp16 needs a CUDA device, this run is on {device.type} (use bf16)")
        self.mode, self.device, self.grad_clip = mode, device, grad_clip
        if accumulate < 1:
            raise ConfigError(f"train.accumulate: must be at least 1, got {accumulate}")
        self.scaler = torch.amp.GradScaler("cuda") if mode == "fp16" else None
        self.accumulate, self.world = accumulate, world
        self.replica: DistributedDataParallel | None = None  # averages its module's gradients itself
        self._synced: set[int] = set()
        # skip_nonfinite: an optimiser step whose gradients hold NaN or inf is not taken (the
        # gradients are dropped); ``skipped`` says so for the update under way (reset by ``begin``)
        self.skip_nonfinite = skip_nonfinite
        self.skipped = 0

    def begin(self) -> None:
        """Before an update: nothing skipped yet."""
        self.skipped = 0

    def sync_with(self, replica: DistributedDataParallel) -> None:
        """Leave the gradients of ``replica``'s parameters to DDP (bucketed, overlapped with backward)."""
        self.replica = replica
        self._synced = {id(p) for p in replica.module.parameters()}

    def no_sync(self, micro_batch: int) -> contextlib.AbstractContextManager:
        """Around the forward and backward of a micro-batch: DDP communicates on the last one only."""
        if self.replica is None or micro_batch == self.accumulate - 1:
            return contextlib.nullcontext()
        return self.replica.no_sync()

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.mode == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.mode == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def minimize(
        self,
        loss: torch.Tensor,
        optimizers: torch.optim.Optimizer | list[torch.optim.Optimizer],
        parameters: Iterable,
        micro_batch: int = 0,
    ) -> None:
        """Backward ``loss`` of ``micro_batch`` (``StepInfo.micro_batch``, of ``accumulate``); on the
        last one, average the gradients across ranks and step the optimiser(s) (scaled for fp16,
        clipped if configured). Gradients are freed after the step, so nothing carries over into
        another phase's update."""
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        if micro_batch == 0:
            for optimizer in optimizers:
                optimizer.zero_grad(set_to_none=True)
        if self.accumulate > 1:
            loss = loss / self.accumulate
        if micro_batch < self.accumulate - 1:
            (loss if self.scaler is None else self.scaler.scale(loss)).backward()
            return
        if self.scaler is None:
            loss.backward()
            self._average(optimizers)
            parameters = list(parameters)
            # one norm serves both: clipping's total norm is non-finite exactly when a gradient is
            norm = torch.nn.utils.clip_grad_norm_(parameters, self.grad_clip) if self.grad_clip else None
            if self.skip_nonfinite and not self._finite(parameters, norm):
                self.skipped += 1  # the same on every rank: the gradients were averaged first
            else:
                for optimizer in optimizers:
                    optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self._average(optimizers)
            if self.grad_clip:
                for optimizer in optimizers:
                    self.scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(list(parameters), self.grad_clip)
            for optimizer in optimizers:
                self.scaler.step(optimizer)
            self.scaler.update()
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)

    @staticmethod
    def _finite(parameters: list[torch.nn.Parameter], norm: torch.Tensor | None = None) -> bool:
        """Whether every gradient is finite (one read of one number from the device); ``norm``: their
        total norm, when clipping has computed it already."""
        if norm is None:
            grads = [p.grad for p in parameters if p.grad is not None]
            if not grads:
                return True
            norm = torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])  # inf or NaN if any value is
        return bool(torch.isfinite(norm).all())

    def _average(self, optimizers: list[torch.optim.Optimizer]) -> None:
        if self.world > 1:
            parameters = [p for opt in optimizers for g in opt.param_groups for p in g["params"]]
            average_gradients([p for p in parameters if id(p) not in self._synced], self.world)

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
