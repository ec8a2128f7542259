"""Decoding a list of image files into a cache entry: in worker processes, resumable, with a bar.

The images are decoded in chunks of rows straight into ``images.npy`` (a memory map each worker
opens over just its chunk). ``status.npy`` says, per image, whether it is still to do, decoded
(colour or gray) or unreadable; the main process writes a chunk's status only after the worker
has flushed its rows. An interrupted build (Ctrl-C, SIGTERM, a killed process) leaves both in its
partial folder, and the next build of the same entry decodes only what is not done yet. Small
lists decode in threads of this process; from ``PROCESS_FROM`` images on, in worker processes
(Pillow's resizing and Python's share of decoding then run on every core, not under one GIL).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import zipfile
import zlib
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vaekit.data.cache import allocate_images
from vaekit.data.progress import JobProgress
from vaekit.data.reader import DRAFT_RECIPES, upright
from vaekit.data.recipes import is_gray, prepare

TODO, COLOUR, GRAY, FAILED = 0, 1, 2, 3  # the codes of status.npy
CHUNK = 256  # images per task
PROCESS_FROM = 2048  # lists at least this long decode in worker processes
PARENT_CHECK_S = 0.5  # how often a worker process checks that the build it works for is alive
DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError, zipfile.BadZipFile, zlib.error,
                 NotImplementedError, RuntimeError, EOFError)  # fmt: skip


@dataclass
class RowDecoder:
    """Decodes rows ``start:stop`` of ``files`` into ``path`` (a ``.npy`` of uint8 ``shape``,
    its data at ``offset``); picklable, so that one is sent to each worker process once."""

    files: Any  # ImageFiles: ``members`` and a thread-safe ``opener()``
    path: Path
    offset: int
    shape: tuple[int, int, int, int]
    crop: str
    _opener: Any = field(default=None, repr=False)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_opener": None}

    def __call__(self, start: int, stop: int) -> tuple[int, np.ndarray, list[str]]:
        if self._opener is None:
            self._opener = self.files.opener()
        _, channels, size, _ = self.shape
        row_bytes = channels * size * size
        rows = np.memmap(
            self.path, np.uint8, "r+", self.offset + start * row_bytes, (stop - start, channels, size, size)
        )
        codes = np.full(stop - start, FAILED, np.uint8)
        failures = []
        for i in range(start, stop):
            member = self.files.members[i]
            try:
                with self._opener(member) as image:
                    picture = upright(image, size if self.crop in DRAFT_RECIPES else None)
                rows[i - start] = prepare(picture, size, self.crop, channels)
                codes[i - start] = GRAY if is_gray(picture) else COLOUR
            except DECODE_ERRORS as err:
                failures.append(f"{member} ({type(err).__name__}: {err})")
        rows.flush()  # on disk before the main process marks the chunk done
        del rows
        return start, codes, failures


@dataclass
class Decoded:
    """What a build produced: the image map, each image's status code and the failures' lines."""

    images: np.ndarray
    status: np.ndarray
    failures: list[str]


def decode_files(files: Any, folder: Path, size: int, crop: str, channels: int, workers: int) -> Decoded:
    """Decode every member of ``files`` into ``folder/images.npy``, continuing a build that an
    interruption left there; ``workers``: processes or threads (0: one per CPU)."""
    shape = (len(files.members), channels, size, size)
    images, status = _resume(folder, shape)
    failures_file = folder / "failures.txt"
    chunks = [(s, min(s + CHUNK, len(status))) for s in range(0, len(status), CHUNK) if not status[s : s + CHUNK].all()]
    done = len(status) - sum(stop - start for start, stop in chunks)
    label = f"decoding {files.root.name}" + (f" (resumed: {done:,} done before)" if done else "")
    decoder = RowDecoder(files, folder / "images.npy", images.offset, shape, crop)
    n_workers = workers or os.cpu_count() or 1
    with (
        _pool(decoder, n_workers, processes=len(status) - done >= PROCESS_FROM and n_workers > 1) as run,
        JobProgress(label, len(status), done) as progress,
        open(failures_file, "a") as failures_log,
    ):
        for start, codes, failures in run(chunks):
            for line in failures:
                failures_log.write(line.replace("\n", " ") + "\n")
            failures_log.flush()
            status[start : start + len(codes)] = codes
            status.flush()
            progress.advance(len(codes))
    failures = failures_file.read_text().splitlines()
    return Decoded(images, np.array(status), failures)


def _resume(folder: Path, shape: tuple[int, int, int, int]) -> tuple[np.memmap, np.memmap]:
    """The image map and status of an interrupted build of this shape, or new ones."""
    images_path, status_path = folder / "images.npy", folder / "status.npy"
    try:
        images = np.load(images_path, mmap_mode="r+")
        status = np.load(status_path, mmap_mode="r+")
        if images.shape == shape and images.dtype == np.uint8 and status.shape == shape[:1]:
            return images, status
    except (OSError, ValueError):
        pass
    (folder / "failures.txt").unlink(missing_ok=True)
    images = allocate_images(folder, shape)
    status = np.lib.format.open_memmap(status_path, mode="w+", dtype=np.uint8, shape=shape[:1])
    return images, status


_installed: RowDecoder | None = None  # a worker process's decoder


def _install(decoder: RowDecoder) -> None:
    """In a worker process: the decoder, and a watch that ends the worker when its parent dies (a
    SIGKILL or an out-of-memory kill of the build runs no clean-up; orphans would wait for ever)."""
    global _installed
    _installed = decoder
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(1)

    threading.Thread(target=watch, name="vaekit-parent-watch", daemon=True).start()


def _run_installed(chunk: tuple[int, int]) -> tuple[int, np.ndarray, list[str]]:
    assert _installed is not None
    return _installed(*chunk)


@contextmanager
def _pool(decoder: RowDecoder, workers: int, processes: bool) -> Iterator:
    """A function mapping chunks to their results as they finish, in processes or threads; on an
    interruption, chunks not started are dropped and running ones end on their own."""
    pool: Executor
    if processes:
        # fork where there is one: spawn would run the user's script again in each worker (a script
        # without a __main__ guard would start its own build and wait for this one's lock forever)
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_install, initargs=(decoder,))
        task: Any = _run_installed
    else:
        pool = ThreadPoolExecutor(workers, thread_name_prefix="vaekit-decode")
        task = lambda chunk: decoder(*chunk)  # noqa: E731
    try:
        yield lambda chunks: pool.map(task, chunks)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def compact(folder: Path, decoded: Decoded, gray: bool) -> np.ndarray:
    """The decoded images without the unreadable ones (and only their first channel when ``gray``),
    copied chunk by chunk into a new ``images.npy`` only when something has to go."""
    keep = np.flatnonzero((decoded.status == COLOUR) | (decoded.status == GRAY))
    if len(keep) == len(decoded.status) and not gray:
        return decoded.images
    channels = 1 if gray else decoded.images.shape[1]
    target = folder / "compact.npy"
    out = np.lib.format.open_memmap(
        target, mode="w+", dtype=np.uint8, shape=(len(keep), channels, *decoded.images.shape[2:])
    )
    for start in range(0, len(keep), CHUNK):
        out[start : start + CHUNK] = decoded.images[keep[start : start + CHUNK], :channels]
    out.flush()
    del out
    os.replace(target, folder / "images.npy")
    return np.load(folder / "images.npy", mmap_mode="r+")
