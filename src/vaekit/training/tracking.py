"""Experiment trackers as callbacks: TensorBoard, Weights & Biases, MLflow (``train.loggers``).

Each logs the resolved config, scalars every log step (with the learning rate), held-out metrics
and the reconstruction / sample grids at each epoch end, and the final metrics. The CSV log
(``metrics.csv``) is always written: resume reads it. Each tracker is an optional extra; a missing
package is one clear line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from vaekit.data.reader import read_image
from vaekit.optional import require
from vaekit.registry import Registry
from vaekit.schema import dotted_items
from vaekit.training.callbacks import Callback

LOGGERS: Registry = Registry("logger", "train.loggers")  # each: run folder -> a Callback (or None)


def _require(module: str, extra: str):
    return require(module, extra, f"train.loggers: {extra}")


def _scalars(row: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in row.items() if isinstance(v, int | float) and k not in ("step", "epoch")}


def _image(path: Path) -> np.ndarray:
    return np.asarray(read_image(path).convert("RGB"))


class TensorBoardLogger(Callback):
    """Event files under ``RUN/tensorboard`` (``tensorboard --logdir RUN``)."""

    def __init__(self, folder: Path) -> None:
        _require("tensorboard", "tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(folder))

    def on_start(self, trainer) -> None:
        self.writer.add_text("config", "```\n" + trainer.config.to_yaml() + "\n```", trainer.step)

    def on_log(self, trainer, row) -> None:
        for name, value in _scalars(row).items():
            self.writer.add_scalar(f"train/{name}", value, row["step"])

    def on_validation(self, trainer, epoch, metrics, images) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(f"val/{name}", value, trainer.step)
        for name, path in images.items():
            self.writer.add_image(name, _image(path), trainer.step, dataformats="HWC")
        self.writer.flush()

    def on_end(self, trainer, final, interrupted) -> None:
        for name, value in final.items():
            self.writer.add_scalar(f"final/{name}", value, trainer.step)
        self.writer.close()


class WandbLogger(Callback):
    """A W&B run in ``RUN/wandb`` (offline unless ``WANDB_MODE`` says otherwise)."""

    def __init__(self, folder: Path, name: str) -> None:
        self.wandb = _require("wandb", "wandb")
        self.folder, self.name, self.run = folder, name, None

    def on_start(self, trainer) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.run = self.wandb.init(
            dir=str(self.folder),
            name=self.name,
            config=trainer.config.to_dict(),
            mode=os.environ.get("WANDB_MODE", "offline"),
            reinit="finish_previous",
        )

    def on_log(self, trainer, row) -> None:
        self.run.log({f"train/{k}": v for k, v in _scalars(row).items()}, step=row["step"])

    def on_validation(self, trainer, epoch, metrics, images) -> None:
        logged = {f"val/{k}": v for k, v in metrics.items()}
        logged.update({name: self.wandb.Image(str(path)) for name, path in images.items()})
        self.run.log(logged, step=trainer.step)

    def on_end(self, trainer, final, interrupted) -> None:
        if self.run is not None:
            self.run.summary.update({f"final/{k}": v for k, v in final.items()})
            self.run.finish(exit_code=1 if interrupted else 0)


class MLflowLogger(Callback):
    """An MLflow run; the tracking store is ``MLFLOW_TRACKING_URI`` or ``file:RUN/mlruns``."""

    def __init__(self, folder: Path, name: str) -> None:
        self.mlflow = _require("mlflow", "mlflow")
        self.uri = os.environ.get("MLFLOW_TRACKING_URI") or folder.resolve().as_uri()
        self.name = name

    def on_start(self, trainer) -> None:
        if self.uri.startswith("file:"):  # MLflow 3 asks for an explicit opt-in to its file store
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.mlflow.set_tracking_uri(self.uri)
        self.mlflow.set_experiment("vaekit")
        self.mlflow.start_run(run_name=self.name)
        self.mlflow.log_text(trainer.config.to_yaml(), "config.yaml")
        flat = dotted_items(trainer.config.to_dict())
        self.mlflow.log_params({k: str(v)[:500] for k, v in flat.items()})

    def on_log(self, trainer, row) -> None:
        self.mlflow.log_metrics({f"train_{k}": v for k, v in _scalars(row).items()}, step=row["step"])

    def on_validation(self, trainer, epoch, metrics, images) -> None:
        self.mlflow.log_metrics({f"val_{k}": v for k, v in metrics.items()}, step=trainer.step)
        for name, path in images.items():
            self.mlflow.log_artifact(str(path), artifact_path=f"images/{name}")

    def on_end(self, trainer, final, interrupted) -> None:
        self.mlflow.log_metrics({f"final_{k}": v for k, v in final.items()}, step=trainer.step)
        self.mlflow.end_run(status="KILLED" if interrupted else "FINISHED")


@LOGGERS.register("csv", summary="metrics.csv in the run folder (always written)")
def _csv(run_root: Path) -> Callback | None:
    return None


@LOGGERS.register("tensorboard", summary="event files under RUN/tensorboard (the tracking extra)")
def _tensorboard(run_root: Path) -> Callback:
    return TensorBoardLogger(run_root / "tensorboard")


@LOGGERS.register("wandb", summary="Weights & Biases, offline unless WANDB_MODE says otherwise (the tracking extra)")
def _wandb(run_root: Path) -> Callback:
    return WandbLogger(run_root, run_root.name)


@LOGGERS.register("mlflow", summary="MLflow, a file store under RUN/mlruns or MLFLOW_TRACKING_URI (the tracking extra)")
def _mlflow(run_root: Path) -> Callback:
    return MLflowLogger(run_root / "mlruns", run_root.name)


def create_loggers(names: list[str], run_root: Path) -> list[Callback]:
    """The trackers ``train.loggers`` names."""
    loggers = [LOGGERS.get(name).factory(run_root) for name in names]
    return [logger for logger in loggers if logger is not None]
