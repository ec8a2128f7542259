"""A long job's progress (a cache build, a conversion to shards, an encoding pass, an evaluation, a
classifier's training, a mixture's fit): a bar on a terminal, else, as in a scheduler's or
torchrun's log, a line every ``EVERY`` seconds with the work done, the rate and the time left."""

from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm

EVERY = 30.0  # seconds between lines when no bar is drawn


class JobProgress:
    """``advance(n)`` as ``unit`` (images, by default) are done; a context manager that closes the bar."""

    def __init__(self, label: str, total: int, done: int = 0, unit: str = "images", says_done: bool = True) -> None:
        self.label, self.total, self.done, self.first, self.unit = label, total, done, done, unit
        self.says_done, self.said = says_done, False  # says_done False: a pass within EVERY s says nothing
        short = "img" if unit == "images" else unit
        self.bar = tqdm(total=total, initial=done, desc=label, unit=short, leave=False, disable=None)
        self.lines = bool(self.bar.disable)  # no terminal: lines in the log
        self.started = self.last = time.monotonic()

    def __enter__(self) -> JobProgress:
        return self

    def __exit__(self, *_exc) -> None:
        self.bar.close()

    def advance(self, count: int) -> None:
        self.bar.update(count)
        self.done += count
        now = time.monotonic()
        finished = self.done >= self.total and (self.says_done or self.said)
        if not self.lines or (now - self.last < EVERY and not finished):
            return
        self.said = True
        self.last = now
        rate = (self.done - self.first) / max(now - self.started, 1e-9)
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        still = f"about {left / 60:,.0f} min left" if left >= 90 else f"about {left:.0f} s left"
        still = "done" if self.done >= self.total else still
        pace = f"{rate:,.0f} img/s" if self.unit == "images" else f"{rate:,.2f} {self.unit}/s"
        print(f"{self.label}: {self.done:,} of {self.total:,} {self.unit} ({self.done / max(self.total, 1):.0%}), "
              f"{pace}, {still}", file=sys.stderr, flush=True)  # fmt: skip
