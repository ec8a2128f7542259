"""What a run does about updates whose gradients are not finite (``train.on_nonfinite: skip``): it
counts the dropped ones, and when ``max_skipped`` fall within ``skip_window`` steps it goes back to
its newest checkpoint with half the learning rate, at most ``max_rollbacks`` times. This object
keeps the count and the rollbacks (both travel in checkpoints); the trainer does the going back."""

from __future__ import annotations

from pathlib import Path

import torch

from vaekit.config import TrainConfig


def first_nonfinite_row(table: torch.Tensor, names: list[str], steps: list[int]) -> str | None:
    """What went non-finite in a table of logged step results (a row per step, a column per name):
    a value of one step, or the mean of them all (every step finite, their mean not: a huge KL weight)."""
    bad = (~torch.isfinite(table)).nonzero()
    if len(bad):
        row, column = (int(i) for i in bad[0])
        return f"{names[column]} became {table[row, column].item()} at step {steps[row] + 1}"
    mean = table.mean(0)
    if not torch.isfinite(mean).all():
        name = names[int((~torch.isfinite(mean)).nonzero()[0])]
        return f"the mean of {name} over steps {steps[0] + 1}-{steps[-1] + 1} overflowed"
    return None


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


def diverged(what: str, checkpoints: list[Path]) -> TrainingDiverged:
    """The error of a run that cannot go on: what went wrong, where its last good checkpoint is."""
    where = f"the last good checkpoint is {checkpoints[-1]}" if checkpoints else "no checkpoint had been written yet"
    return TrainingDiverged(
        f"{what}; stopped. {where}. Try a lower train.lr, train.grad_clip, or train.precision=fp32."
    )


class NonFiniteRecovery:
    def __init__(self, train: TrainConfig) -> None:
        self.train = train
        self.skipped_steps: list[int] = []  # steps whose update was dropped
        self.rollbacks = 0

    @property
    def lr_scale(self) -> float:
        """Each rollback halves the learning rate."""
        return 0.5**self.rollbacks

    def skipped(self, step: int) -> bool:
        """Count the update of ``step`` as dropped; True when it is time to roll back."""
        self.skipped_steps.append(step)
        recent = sum(s > step - self.train.skip_window for s in self.skipped_steps)
        return recent >= self.train.max_skipped

    @property
    def reason(self) -> str:
        return f"{self.train.max_skipped} updates within {self.train.skip_window} steps had non-finite gradients"

    def can_roll_back(self) -> bool:
        return self.rollbacks < self.train.max_rollbacks

    def rolled_back(self) -> None:
        """After the trainer restored a checkpoint (which set this object's state back): one more."""
        self.rollbacks, self.skipped_steps = self.rollbacks + 1, []

    def state_dict(self) -> dict:
        return {"rollbacks": self.rollbacks, "skipped_steps": list(self.skipped_steps)}

    def load_state_dict(self, state: dict) -> None:
        self.rollbacks = int(state.get("rollbacks", 0))
        self.skipped_steps = [int(step) for step in state.get("skipped_steps", [])]
