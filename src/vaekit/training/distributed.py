"""Data-parallel training across processes started by ``torchrun`` (gloo on CPU, NCCL on GPU).

Every rank holds the whole model and trains on its shard of each global batch; after each
backward the gradients are averaged across ranks (one flat all-reduce per update), so every rank
takes the same optimiser step: the arithmetic of ``DistributedDataParallel``, applied at the
optimiser rather than at ``forward`` because the intro objectives update encoder and decoder in
separate phases through ``encode``/``decode``, which DDP's forward hooks do not see.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


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
    return ranks, device


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


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()
