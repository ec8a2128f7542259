"""SIGINT / SIGTERM during training: finish the step, checkpoint, then stop (a second Ctrl-C: at once)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class TrainingStopped(RuntimeError):
    """A signal (or another process's) stopped the run after a checkpoint; it can be resumed."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason

    @property
    def exit_code(self) -> int:
        return 130 if self.reason == "SIGINT" else 143


class StopFlag:
    """Which signal asked the loop to stop (None: none yet)."""

    signal: str | None = None


@contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    """SIGINT / SIGTERM ask the loop to checkpoint and stop after the current step."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, _frame):
        if flag.signal:  # a second Ctrl-C: give up at once
            raise KeyboardInterrupt
        flag.signal = signal.Signals(signum).name

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
