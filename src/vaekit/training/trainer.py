"""The training loop. Read it top to bottom: set up, (resume), then steps, logs, epoch ends.

The loop owns the device, precision, learning-rate schedule, logging, grids, checkpoints,
signals and the NaN guard; the objective owns its optimisers and what one step does.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from tqdm.auto import tqdm

from vaekit.config import Config
from vaekit.data import BatchLoader, ImageDataset, load_dataset
from vaekit.evaluation.elbo import evaluate_elbo
from vaekit.explore.grids import interleave, save_grid
from vaekit.models import VAE, create_model
from vaekit.objectives import StepInfo, create_objective
from vaekit.training.checkpoint import (
    list_checkpoints,
    load_training_state,
    load_weights,
    save_checkpoint,
    save_weights,
)
from vaekit.training.lr_schedule import lr_factor
from vaekit.training.precision import Precision
from vaekit.training.run_dir import MetricsLog, RunDir, plot_curves


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Trainer:
    """Train ``config`` into ``run_dir``; ``resume=True`` continues from its newest checkpoint."""

    def __init__(
        self, config: Config, run_dir: Path | str, *, resume: bool = False, dataset: ImageDataset | None = None
    ):
        self.run = RunDir(Path(run_dir))
        train = config.train
        if train.threads:
            torch.set_num_threads(train.threads)
        torch.manual_seed(train.seed)
        self.device = resolve_device(train.device)

        full = dataset if dataset is not None else load_dataset(config.data)
        config.data.channels = full.image_shape[0]  # resolve "auto" so the saved config is complete
        if full.image_shape[1:] != (config.data.image_size, config.data.image_size):
            raise ValueError(f"dataset images are {full.image_shape[1:]}, config wants {config.data.image_size} px")
        self.train_set = full.split("train", config.data.val_fraction, config.data.seed)
        self.val_set = full.split("val", config.data.val_fraction, config.data.seed)
        self.config = config

        self.model: VAE = create_model(config).to(self.device)
        self.precision = Precision(train.precision, self.device, train.grad_clip)
        self.objective = create_objective(self.model, config, self.precision)
        self.loader = BatchLoader(
            self.train_set.images, train.batch_size, flip=config.data.flip, seed=train.seed, device=self.device
        )
        self.steps_per_epoch = len(self.loader)
        self.step = 0
        self.elapsed = 0.0  # training seconds before this process (from the checkpoint)
        self._pending: list[tuple[int, dict[str, torch.Tensor]]] = []
        self._saved_step: int | None = None
        self._clock = _Clock(0.0)

        self.run.root.mkdir(parents=True, exist_ok=True)
        checkpoints = list_checkpoints(self.run.checkpoints)
        if resume and checkpoints:
            self._restore(checkpoints[-1])
        elif checkpoints:
            raise FileExistsError(
                f"{self.run.root} already holds a run: resume it with --resume, or pick another --out"
            )
        config.to_yaml(self.run.config)
        self.metrics = MetricsLog(self.run.metrics, self.objective.metric_names, self.step if resume else None)
        self.fixed_images = self._fixed_batch()

    # ------------------------------------------------------------------ the loop
    def fit(self) -> Path:
        """Train until ``epochs``, ``max_steps``, ``max_time`` or a signal; return the run folder."""
        train = self.config.train
        planned = train.epochs * self.steps_per_epoch  # the plan; max_steps only stops early
        total = planned if train.max_steps is None else min(planned, train.max_steps)
        self.model.train()
        parameters = sum(p.numel() for p in self.model.parameters())
        tqdm.write(
            f"{self.config.model.arch} VAE ({parameters / 1e6:.2f}M parameters, {train.precision}, {self.device}) on "
            f"{len(self.train_set)} train / {len(self.val_set)} held-out images from {self.config.data.source}"
            f" -> {self.run.root}" + (f" (resuming at step {self.step})" if self.step else "")
        )
        self._clock = _Clock(self.elapsed)
        epoch, start = divmod(self.step, self.steps_per_epoch)
        stop_reason = None
        bar = tqdm(total=total, initial=self.step, unit="step", dynamic_ncols=True, desc=self.run.root.name)
        with self._stop_on_signals() as stop:
            while self.step < total and stop_reason is None:
                for batch_index, batch in enumerate(self.loader.epoch(epoch, start), start=start):
                    self._set_lr(self.step)
                    info = StepInfo(self.step, epoch + batch_index / self.steps_per_epoch, planned)
                    self._pending.append((self.step, self.objective.step(batch, info)))
                    self.step += 1
                    self._clock.images += len(batch)
                    bar.update(1)
                    if train.max_time is not None and self._clock.elapsed() >= train.max_time:
                        stop_reason = "time budget"
                    stop_reason = stop.signal or stop_reason
                    if self.step % train.log_every == 0:
                        self._flush(bar)
                    if self.step % train.checkpoint_every == 0:
                        self._checkpoint()
                    if stop_reason or self.step >= total:
                        break
                self._flush(bar)
                if self.step % self.steps_per_epoch == 0:
                    self._end_of_epoch(epoch)
                epoch, start = epoch + 1, 0
            self._checkpoint()
        bar.close()
        self._finish(interrupted_by=stop.signal)
        return self.run.root

    # ------------------------------------------------------------------ pieces of the loop
    def _set_lr(self, step: int) -> None:
        factor = lr_factor(self.config.train, step, self.steps_per_epoch)
        for optimizer in self.objective.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * factor

    def _flush(self, bar: tqdm) -> None:
        """Check the pending step results for NaN/inf, then log their mean as one row."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        steps = [step for step, _ in pending]
        losses = torch.stack([scalars["loss"].float() for _, scalars in pending]).cpu()
        bad = (~torch.isfinite(losses)).nonzero()
        if len(bad):
            good = list_checkpoints(self.run.checkpoints)
            where = f"the last good checkpoint is {good[-1]}" if good else "no checkpoint had been written yet"
            raise TrainingDiverged(
                f"loss became {losses[int(bad[0])].item()} at step {steps[int(bad[0])] + 1}; stopped. {where}. "
                "Try a lower train.lr, train.grad_clip, or train.precision=fp32."
            )
        means = {name: torch.stack([s[name].float() for _, s in pending]).mean().item() for name in pending[0][1]}
        rate = self._clock.images_per_s()
        lr = self.config.train.lr * lr_factor(self.config.train, steps[-1], self.steps_per_epoch)
        epochs_done = (steps[-1] + 1) / self.steps_per_epoch
        row = {"step": steps[-1] + 1, "epoch": epochs_done, "split": "train", "elapsed_s": self._clock.elapsed()}
        self.metrics.write({**row, "lr": lr, "images_per_s": rate, **means})
        kl = means.get("kl", means.get("kl_real", math.nan))  # intro objectives log kl_real / kl_fake
        bar.set_postfix(loss=f"{means['loss']:.4g}", kl=f"{kl:.3g}", img_s=f"{rate:.0f}")

    def _end_of_epoch(self, epoch: int) -> None:
        """Validation ELBO, grids, curves and a checkpoint."""
        if len(self.val_set):
            val = evaluate_elbo(self.model, self.val_set.images[:2048], self.config.train.batch_size)
            self.metrics.write({"step": self.step, "epoch": float(epoch + 1), "split": "val", **val})
        self.save_grids(f"epoch-{epoch + 1:03d}")
        plot_curves(self.metrics.read(), self.run.curves)
        warning = self.objective.end_of_epoch(epoch)
        if warning:
            tqdm.write(f"warning (epoch {epoch + 1}): {warning}")
        self._checkpoint()

    def save_grids(self, tag: str) -> None:
        """Reconstructions of a fixed batch and samples of fixed latents, written to images/."""
        n = self.config.train.grid_size
        per_row = max(1, int(math.sqrt(n)))
        generator = torch.Generator().manual_seed(self.config.train.seed)
        with self.model.evaluating():
            recon = self.model.reconstruct(self.fixed_images)
            with self.objective.export_context():
                samples = self.model.sample(n, generator=generator)
        save_grid(interleave(self.fixed_images, recon, per_row), self.run.images / f"recon-{tag}.png", per_row)
        save_grid(samples, self.run.images / f"samples-{tag}.png", per_row)

    def _fixed_batch(self) -> torch.Tensor:
        source = self.val_set if len(self.val_set) else self.train_set
        n = min(self.config.train.grid_size // 2 or 1, len(source))
        loader = BatchLoader(source.images[:n], n, shuffle=False, device=self.device)
        return next(iter(loader))

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self) -> None:
        if self._saved_step == self.step:
            return
        self._saved_step = self.step
        state = {
            "step": self.step,
            "elapsed_s": self._clock.elapsed(),
            "optimizers": self.objective.state_dict(),
            "scaler": self.precision.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }
        save_checkpoint(self.run.checkpoints, self.step, self.model, state, self.config.train.keep_checkpoints)

    def _restore(self, checkpoint: Path) -> None:
        load_weights(self.model, checkpoint)
        state = load_training_state(checkpoint)
        self.objective.load_state_dict(state["optimizers"])
        self.precision.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng_cpu"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        self.step, self.elapsed = int(state["step"]), float(state["elapsed_s"])
        self._saved_step = self.step

    def _finish(self, interrupted_by: str | None) -> None:
        """Write model/ (weights + config) and the final grids and curves."""
        plot_curves(self.metrics.read(), self.run.curves)
        if interrupted_by:
            tqdm.write(
                f"stopped by {interrupted_by} at step {self.step}; resume with: vaekit train --resume {self.run.root}"
            )
            return
        self.run.model.mkdir(exist_ok=True)
        with self.objective.export_context():
            save_weights(self.model, self.run.model)
        self.config.to_yaml(self.run.model / "config.yaml")
        self.save_grids("final")

    @contextmanager
    def _stop_on_signals(self) -> Iterator[_StopFlag]:
        """SIGINT / SIGTERM ask the loop to checkpoint and stop after the current step."""
        flag = _StopFlag()
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


class _StopFlag:
    signal: str | None = None


class _Clock:
    """Training seconds (including those before a resume) and images per second in this process."""

    def __init__(self, before: float) -> None:
        self.before, self.started, self.images = before, time.perf_counter(), 0

    def elapsed(self) -> float:
        return self.before + time.perf_counter() - self.started

    def images_per_s(self) -> float:
        return self.images / max(time.perf_counter() - self.started, 1e-9)
