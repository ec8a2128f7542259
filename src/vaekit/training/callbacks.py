"""Callbacks: user code called by the trainer at fixed points of a run.

Subclass ``Callback`` and override what you need; pass instances as ``vaekit.train(...,
callbacks=[...])``. Experiment trackers (TensorBoard, W&B, MLflow) are callbacks too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

Trainer = Any  # the running ``vaekit.training.trainer.Trainer`` (named here, not imported: it imports us)


class Callback:
    """Hooks of a training run; every method is optional."""

    def on_start(self, trainer: Trainer) -> None:
        """Before the first step (also after a resume); ``trainer.config`` is the resolved config."""

    def on_step(self, trainer: Trainer, step: int, metrics: dict[str, torch.Tensor]) -> None:
        """After every update; ``metrics`` are device tensors (reading them waits for the device)."""

    def on_log(self, trainer: Trainer, row: dict[str, Any]) -> None:
        """Every ``train.log_every`` steps: the mean of the metrics since the last row, with the lr."""

    def on_validation(self, trainer: Trainer, epoch: int, metrics: dict[str, float], images: dict[str, Path]) -> None:
        """At each epoch end: held-out metrics and the grids written (``recon``, ``samples``)."""

    def on_checkpoint(self, trainer: Trainer, path: Path) -> None:
        """After a checkpoint folder was written."""

    def on_model_written(self, trainer: Trainer, folder: Path) -> None:
        """A finished run's model folder is written; ``trainer.model`` holds the weights saved there."""

    def on_end(self, trainer: Trainer, final: dict[str, float], interrupted: bool) -> None:
        """When the run stops: the last held-out metrics; ``interrupted`` if a signal stopped it."""


class CallbackList(Callback):
    """Calls every callback in turn."""

    def __init__(self, callbacks: list[Callback]) -> None:
        self.callbacks = list(callbacks)

    def __getattribute__(self, name: str):
        if name.startswith("on_"):
            callbacks = object.__getattribute__(self, "callbacks")

            def call_all(*args, **kwargs) -> None:
                for callback in callbacks:
                    getattr(callback, name)(*args, **kwargs)

            return call_all
        return object.__getattribute__(self, name)
