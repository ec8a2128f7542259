"""Data-parallel training across processes started by ``torchrun`` (gloo on CPU, NCCL on GPU).

Every rank holds the whole model and trains on its shard of each global batch, and every rank
takes the same optimiser step from gradients averaged across ranks, in one of two ways:

- ``ddp``: PyTorch's ``DistributedDataParallel`` around the model: gradients are all-reduced in
  buckets while backward is still running (communication overlapped with computation). Used for
  objectives that make one forward and one backward per update (``Objective.supports_ddp``).
- ``flat``: one flat all-reduce per dtype after backward (``average_gradients``), for objectives
  that update encoder and decoder in separate phases through ``encode``/``decode`` (the intro
  objectives), which DDP's forward hooks do not see, and for parameters outside the model (the
  adversarial discriminator).
"""

from __future__ import annotations

import inspect
import os
import warnings
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from vaekit.config import ConfigError


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def setup(device_name: str) -> tuple[Ranks, torch.device | None]:
    """Join the process group that ``torchrun`` describes in the environment (if any).

    Returns the ranks and, under torchrun with CUDA, this rank's GPU (else ``None``: the caller's
    device choice stands).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks(), None
    ranks = Ranks(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    use_cuda = torch.cuda.is_available() and device_name in ("auto", "cuda")
    device = torch.device("cuda", ranks.local_rank) if use_cuda else None
    if device is not None:
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", device_id=device)
    global _PATIENT
    _PATIENT = dist.new_group(backend="gloo", timeout=PATIENT_TIMEOUT)  # every rank, together, now
    return ranks, device


PATIENT_TIMEOUT = timedelta(days=7)  # waiting for one rank's long preprocessing is not a hang
_PATIENT = None  # a CPU (gloo) group for waits that may take hours, apart from the training group


def wait_for_rank0(ranks: Ranks, what: str) -> None:
    """Where rank 0 does something long first (building the image cache): the other ranks wait
    for it without the training group's timeout (NCCL's 10 minutes), saying once why they wait;
    rank 0 calls this when it is done."""
    if not dist.is_initialized():
        return
    if not ranks.is_main and ranks.local_rank == 0:
        print(f"rank {ranks.rank}: waiting for rank 0 to finish {what} (no time limit)", flush=True)
    dist.barrier(group=_PATIENT)


def wait_for_every_rank() -> None:
    """All ranks meet without the training group's timeout: after each has done its own long part
    (a node with its own cache builds it while the others already have theirs)."""
    if dist.is_initialized():
        dist.barrier(group=_PATIENT)


def average_gradients(parameters: list[torch.Tensor], world: int) -> None:
    """Replace each gradient by its mean over the ranks, in one flat all-reduce per dtype."""
    grads = [p.grad for p in parameters if p.grad is not None]
    for dtype in dict.fromkeys(g.dtype for g in grads):  # the same order on every rank (a set's is not)
        same = [g for g in grads if g.dtype == dtype]
        flat = torch.cat([g.reshape(-1) for g in same])
        dist.all_reduce(flat)
        flat.div_(world)
        offset = 0
        for g in same:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()


def gradient_sync(ranks: Ranks, asked: str, supports_ddp: bool, objective: str) -> str | None:
    """How gradients are averaged across processes (``train.gradient_sync``): ``ddp``, ``flat`` or
    ``None`` for one process; ``auto`` is ddp where the objective allows it."""
    if not ranks.distributed:
        return None
    if asked == "ddp" and not supports_ddp:
        raise ConfigError(
            f"train.gradient_sync: ddp needs one forward and backward per update; {objective} "
            "updates in phases (use auto or flat)"
        )
    return "ddp" if asked == "ddp" or (asked == "auto" and supports_ddp) else "flat"


def replicate(model: torch.nn.Module, device: torch.device, bucket_mb: float) -> DistributedDataParallel:
    """``model`` under DDP with gradient buckets of ``bucket_mb`` MiB. Buffers (BatchNorm statistics)
    stay per process, as on the flat path; ranks start equal (``broadcast_state`` / DDP's own)."""
    # a 1x1 convolution's gradient may come out with other strides than its bucket view: DDP then
    # copies those few numbers, which is correct; its performance note says nothing a user can act on
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    newer = "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters  # torch >= 2.13
    return DistributedDataParallel(
        model,
        device_ids=[device] if device.type == "cuda" else None,
        bucket_cap_mb=bucket_mb,
        gradient_as_bucket_view=True,
        **({"forward_sync_buffers": False} if newer else {"broadcast_buffers": False}),
    )


def broadcast_state(module: torch.nn.Module) -> None:
    """Make every rank's parameters and buffers equal to rank 0's."""
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)


def mean_over_ranks(values: torch.Tensor, world: int) -> torch.Tensor:
    """The element-wise mean of ``values`` over the ranks (a copy)."""
    total = values.detach().clone()
    dist.all_reduce(total)
    return total / world


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on any, so that all ranks stop at the same step."""
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


class StopVote:
    """How urgently any rank asked to stop (0: not at all), agreed one step late so that no step
    makes the host wait for the device: each step starts an all-reduce (max) of this rank's level
    (a device tensor filled by a kernel, copied back into pinned memory after the reduction) and
    reads the previous step's result, which every rank reads at the same step, and the same."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        # gloo: (work, value, None); CUDA: (device value, pinned host copy, event after the copy)
        self._pending: tuple[Any, torch.Tensor, Any] | None = None

    def cast(self, level: int) -> int:
        """Send this step's level; the highest level of any rank at the previous step."""
        agreed = self.finish()
        value = torch.full((1,), float(level), device=self.device)  # a fill, not a copy from the host
        work = dist.all_reduce(value, op=dist.ReduceOp.MAX, async_op=True)
        if self.device.type == "cuda":
            work.wait()  # the current stream waits for the reduction; the host does not
            host = torch.empty(1, pin_memory=True)
            host.copy_(value, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
            self._pending = (value, host, event)  # value kept alive until the copy has read it
        else:
            self._pending = (work, value, None)
        return agreed

    def agree(self, wish: str | None, gentle: str = "time budget") -> str | None:
        """Why every rank stops now (None: go on), one step after the first wish, the same on every
        rank: ``gentle`` where that is all any rank asked for, else an interruption."""
        level = 0 if wish is None else 1 if wish == gentle else 2
        agreed = self.cast(level)
        if agreed == 0:
            return None
        return gentle if agreed == 1 else wish if level == 2 else "another process stopping"

    def finish(self) -> int:
        """The result of the vote under way (0 if none)."""
        if self._pending is None:
            return 0
        work, host, event = self._pending
        self._pending = None
        if event is None:
            work.wait()
        if event is not None:
            event.synchronize()  # long done: the step after it is already queued
        return int(host[0])


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()
