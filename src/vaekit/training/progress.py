"""What a run shows while it trains: a progress bar on a terminal, a plain line per log row
elsewhere, and the clock behind its images per second and its time budget."""

from __future__ import annotations

import os
import sys
import time

from tqdm.auto import tqdm


def interactive() -> bool:
    """A progress bar only on a terminal and unless TQDM_DISABLE is set."""
    return sys.stderr.isatty() and os.environ.get("TQDM_DISABLE", "").lower() in ("", "0", "false")


class Clock:
    """Training seconds (including those before a resume) and images per second in this process."""

    def __init__(self, before: float) -> None:
        self.before, self.started, self.images = before, time.perf_counter(), 0

    def elapsed(self) -> float:
        return self.before + time.perf_counter() - self.started

    def images_per_s(self) -> float:
        return self.images / max(time.perf_counter() - self.started, 1e-9)


class Progress:
    """Steps done out of the run's total: a tqdm bar on a terminal, else one plain line per ``show``.

    With a time budget (``train.max_time``) the total is whichever ends the run first: the planned
    steps, or the steps the rest of the budget holds at this process's pace so far (so the bar and
    its ETA promise the run that will happen)."""

    def __init__(
        self, total: int, done: int, name: str, shown: bool, budget: float | None = None, clock: Clock | None = None
    ) -> None:
        self.planned, self.budget, self.clock = total, budget, clock
        self.first = self.done = done  # counted here: a disabled tqdm bar counts nothing
        self._total = total
        self.paced_from = clock.elapsed() if clock is not None else 0.0
        hidden = not shown or not interactive()
        self.bar = tqdm(total=total, initial=done, unit="step", dynamic_ncols=True, desc=name, disable=hidden)

    @property
    def total(self) -> int:
        return self._total

    def expected_total(self) -> int:
        """The planned steps, or fewer where the time budget ends the run first."""
        steps = self.done - self.first
        if self.budget is None or self.clock is None or steps < 1:
            return self.planned
        now = self.clock.elapsed()
        pace = (now - self.paced_from) / steps  # seconds per step in this process
        if pace <= 0:
            return self.planned
        return min(self.planned, self.done + max(int((self.budget - now) / pace), 0))

    def advance(self) -> None:
        self.done += 1
        self.bar.update(1)
        expected = max(self.expected_total(), self.done)
        if expected != self._total:
            self._total = self.bar.total = expected

    def show(self, step: int, status: dict[str, str]) -> None:
        if self.bar.disable:  # not a terminal: no carriage returns
            print(f"step {step}/{self.total} " + " ".join(f"{k}={v}" for k, v in status.items()), flush=True)
        else:
            self.bar.set_postfix(status)

    def close(self) -> None:
        self.bar.close()


def share(measured: int, available: int, seconds: float | None) -> str:
    """``"96 of 2,048 (train.final_pass_seconds 5)"``: how much of a bounded pass was measured."""
    return f"{measured:,}" + (
        f" of {available:,} (train.final_pass_seconds {seconds:g})" if measured < available else ""
    )


def bounded_batch(batch_size: int, seconds: float | None) -> int:
    """A pass bounded by time goes in batches of at most 16, so that it stops close to its bound."""
    return batch_size if seconds is None else min(batch_size, 16)
