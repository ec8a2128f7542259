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
    """Steps done out of ``total``: a tqdm bar on a terminal, else one plain line per ``show``."""

    def __init__(self, total: int, done: int, name: str, shown: bool) -> None:
        self.total = total
        hidden = not shown or not interactive()
        self.bar = tqdm(total=total, initial=done, unit="step", dynamic_ncols=True, desc=name, disable=hidden)

    def advance(self) -> None:
        self.bar.update(1)

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
