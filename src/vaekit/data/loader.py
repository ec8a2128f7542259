"""Batches straight from the uint8 cache: the order is a pure function of (seed, epoch).

Because nothing but ``(seed, epoch, batch index)`` decides which images a batch holds and whether
they are flipped, a resumed run sees exactly the batches an uninterrupted one would. With
``shard=(rank, world)`` each training process reads only its equal slice of every global batch,
straight from the memory-mapped cache. Images travel as uint8 and become float in [0, 1] on the
target device. With ``prefetch``, a background thread gathers (or, for tar shards, decodes) the
next batches into pinned memory while the current one trains; with ``processes`` (images decoded
when read: tar shards), a torch ``DataLoader``'s worker processes decode them, each ``prefetch``
batches ahead, kept alive from epoch to epoch, and the batches are pinned as they arrive.
"""

from __future__ import annotations

import copy
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import torch

from vaekit.data.dataset import decoded_when_read, read_rows

T = TypeVar("T")


class BatchLoader:
    """Iterate one epoch of ``images`` (uint8 ``(N, C, H, W)``) as float batches in [0, 1]
    (float32 vectors ``(N, D)``, for users' own networks, are served as they are).

    ``batch_size`` is the global batch; with ``shard=(rank, world)`` this loader yields rank's
    ``batch_size // world`` images of each.
    """

    def __init__(
        self,
        images: np.ndarray,
        batch_size: int,
        *,
        shuffle: bool = True,
        flip: bool = False,
        drop_last: bool = True,
        seed: int = 0,
        device: torch.device | str = "cpu",
        shard: tuple[int, int] = (0, 1),
        channels_last: bool = False,
        prefetch: int = 0,
        processes: int = 0,
    ) -> None:
        if len(images) == 0:
            raise ValueError("cannot load batches from an empty dataset")
        world = shard[1]
        if batch_size % world:
            raise ValueError(f"the batch of {batch_size} does not split evenly over {world} processes")
        self.images = images
        self.batch_size = min(batch_size, len(images)) if drop_last else batch_size
        self.shuffle, self.flip, self.drop_last, self.seed = shuffle, flip, drop_last, seed
        self.device = torch.device(device)
        self.shard = shard
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.prefetch = prefetch  # batches prepared ahead by a background thread (0: on the caller's)
        # arrays and memory maps: a gather is a copy, which a thread does as well
        self.processes = processes if decoded_when_read(images) else 0
        self._workers: _WorkerBatches | None = None

    def __len__(self) -> int:
        n = len(self.images)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The image indices of ``epoch`` in the order they are served."""
        if not self.shuffle:
            return np.arange(len(self.images))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.images))

    def epoch(self, epoch: int, start: int = 0) -> Iterator[torch.Tensor]:
        """Batches ``start, start+1, ...`` of ``epoch``."""
        if self.processes:
            yield from self._from_processes(epoch, start)
            return
        order = self.order(epoch)
        if not self.prefetch:
            for b in range(start, len(self)):
                yield self._to_device(self._gather(order, epoch, b))
            return
        with ThreadPoolExecutor(1, thread_name_prefix="vaekit-prefetch") as pool:
            ahead = deque(
                pool.submit(self._gather, order, epoch, b) for b in range(start, min(start + self.prefetch, len(self)))
            )
            following = start + len(ahead)
            while ahead:
                host = ahead.popleft().result()
                if following < len(self):
                    ahead.append(pool.submit(self._gather, order, epoch, following))
                    following += 1
                yield self._to_device(host)

    def _from_processes(self, epoch: int, start: int) -> Iterator[torch.Tensor]:
        if self._workers is None:
            self._workers = _WorkerBatches(self)
        for host in self._workers.epoch(epoch, start, len(self)):
            yield self._to_device(host)

    def _gather(
        self, order: np.ndarray, epoch: int, b: int, pin: bool = True
    ) -> tuple[torch.Tensor, np.ndarray | None]:
        """This rank's images of batch ``b`` on the host (pinned for a GPU, where ``pin``) and their flips."""
        rank, world = self.shard
        index = np.sort(order[b * self.batch_size : (b + 1) * self.batch_size])
        mine = slice(rank * len(index) // world, (rank + 1) * len(index) // world)
        batch = torch.from_numpy(np.ascontiguousarray(read_rows(self.images, index[mine], epoch, self.seed)))
        if pin and self.device.type == "cuda":
            batch = batch.pin_memory()
        flips = None
        if self.flip and batch.dim() == 4:
            flips = np.random.default_rng([self.seed, epoch, b, 1]).random(len(index))[mine] < 0.5
        return batch, flips

    def _to_device(self, gathered: tuple[torch.Tensor, np.ndarray | None]) -> torch.Tensor:
        host, flips = gathered
        batch = host.to(self.device, non_blocking=True).float()
        if self.images.dtype == np.uint8:
            batch = batch.div_(255.0)
        if flips is not None:
            mask = torch.from_numpy(flips).to(self.device).view(-1, 1, 1, 1)
            batch = torch.where(mask, batch.flip(-1), batch)
        return batch.contiguous(memory_format=self.memory_format) if batch.dim() == 4 else batch

    def __iter__(self) -> Iterator[torch.Tensor]:
        return self.epoch(0)


class _WorkerBatches:
    """Batches of a loader prepared in a ``DataLoader``'s worker processes, which live as long as
    the loader (``persistent_workers``): each epoch only sends them the positions of its batches.
    Nothing here refers back to what holds it, so the workers end as soon as the loader goes."""

    def __init__(self, loader: BatchLoader) -> None:
        self.wanted: list[tuple[int, int]] = []  # changed in place: the sampler reads this list
        self.batches = torch.utils.data.DataLoader(
            _Batches(loader),
            batch_size=None,
            sampler=_Wanted(self.wanted),
            num_workers=loader.processes,
            prefetch_factor=max(1, loader.prefetch),
            persistent_workers=True,
            pin_memory=loader.device.type == "cuda",
            collate_fn=_as_is,
        )

    def epoch(self, epoch: int, start: int, count: int) -> Iterator[tuple[torch.Tensor, np.ndarray | None]]:
        self.wanted[:] = [(epoch, b) for b in range(start, count)]
        try:
            yield from self.batches
        except Exception as err:  # a worker's error comes wrapped in its traceback: raise its own line
            lines = [line for line in str(err).splitlines() if line.strip()]
            if not str(err).startswith("Caught ") or not lines:
                raise
            last = lines[-1].split(": ", 1)[-1]
            try:
                own = type(err)(last)
            except Exception:  # an exception type that takes other arguments
                raise err from None
            raise own from None


def within(batches: Iterable[T], seconds: float | None) -> Iterator[T]:
    """``batches`` until ``seconds`` have passed since the first was asked for (None: all of them);
    the first is always given, so a bounded pass still measures something."""
    started = time.monotonic()
    for index, batch in enumerate(batches):
        if index and seconds is not None and time.monotonic() - started >= seconds:
            return
        yield batch


def _as_is(batch):
    return batch


class _Batches(torch.utils.data.Dataset):
    """Batch ``(epoch, b)`` of a loader; a worker draws the epoch's order from (seed, epoch) itself."""

    def __init__(self, loader: BatchLoader) -> None:
        self.loader = copy.copy(loader)
        self.loader._workers = None
        self._order: tuple[int, np.ndarray] | None = None

    def __getitem__(self, wanted: tuple[int, int]) -> tuple[torch.Tensor, np.ndarray | None]:
        epoch, b = wanted
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, self.loader.order(epoch))
        return self.loader._gather(self._order[1], epoch, b, pin=False)

    def __len__(self) -> int:
        return len(self.loader)


class _Wanted(torch.utils.data.Sampler):
    """The batches the current epoch still wants, read by the main process at each ``iter``."""

    def __init__(self, wanted: list[tuple[int, int]]) -> None:
        self.wanted = wanted

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(list(self.wanted))

    def __len__(self) -> int:
        return len(self.wanted)
