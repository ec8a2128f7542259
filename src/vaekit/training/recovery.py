"""What a run does about updates whose gradients are not finite (``train.on_nonfinite: skip``): it
counts the dropped ones, and when ``max_skipped`` fall within ``skip_window`` steps it goes back to
its newest checkpoint with half the learning rate, at most ``max_rollbacks`` times. This object
keeps the count and the rollbacks (both travel in checkpoints); the trainer does the going back."""

from __future__ import annotations

from pathlib import Path

from vaekit.config import TrainConfig


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
