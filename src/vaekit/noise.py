"""Per-sample training noise that does not depend on how the global batch is split.

A training step draws noise for each image (posterior samples, dynamic binarisation, prior
samples for fakes). Inside ``batch_shard(seed, index, count)`` every draw is made for the whole
global batch from a generator seeded by ``seed`` and sliced to this shard's rows, so 2 ranks x 32
images, 4 micro-batches x 16 or 1 process x 64 see exactly the same noise per image, and a resumed
run draws what an uninterrupted one would. Outside such a block the functions are the usual
``torch`` ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class _Shard:
    seed: int
    index: int
    count: int
    generators: dict[torch.device, torch.Generator] = field(default_factory=dict)

    def generator(self, device: torch.device) -> torch.Generator:
        if device not in self.generators:
            self.generators[device] = torch.Generator(device).manual_seed(self.seed)
        return self.generators[device]


_shard: ContextVar[_Shard | None] = ContextVar("vaekit_batch_shard", default=None)


def step_seed(seed: int, step: int) -> int:
    """A well-mixed 63-bit seed for training step ``step`` of a run seeded ``seed``."""
    return int(np.random.SeedSequence([seed, step]).generate_state(2, np.uint64)[0] >> np.uint64(1))


@contextmanager
def batch_shard(seed: int, index: int = 0, count: int = 1) -> Iterator[None]:
    """Draw noise as rows ``index`` of ``count`` equal shards of the global batch, seeded by ``seed``."""
    if not 0 <= index < count:
        raise ValueError(f"shard {index} of {count} does not exist")
    token = _shard.set(_Shard(seed, index, count))
    try:
        yield
    finally:
        _shard.reset(token)


def _draw(kind: str, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    shard = _shard.get()
    draw = torch.randn if kind == "normal" else torch.rand
    if shard is None:
        return draw(shape, device=device, dtype=dtype)
    rows = shape[0]
    full = draw((rows * shard.count, *shape[1:]), generator=shard.generator(device), device=device, dtype=dtype)
    return full[shard.index * rows : (shard.index + 1) * rows]


def randn(*shape: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal noise of ``shape`` (first dimension: this shard's batch rows)."""
    return _draw("normal", tuple(shape), torch.device(device), dtype)


def randn_like(t: torch.Tensor) -> torch.Tensor:
    return _draw("normal", tuple(t.shape), t.device, t.dtype)


def rand_like(t: torch.Tensor) -> torch.Tensor:
    """Uniform [0, 1) noise shaped like ``t``."""
    return _draw("uniform", tuple(t.shape), t.device, t.dtype)
