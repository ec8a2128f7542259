"""The training loop. Read it top to bottom: set up, (resume), then steps, logs, epoch ends.

The loop owns the device, precision, learning-rate schedule, logging, grids, checkpoints,
signals and the NaN guard; the objective owns its optimisers and what one step does.
"""

from __future__ import annotations

import contextlib
import time
import typing
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from vaekit import noise
from vaekit.config import Config, ConfigError
from vaekit.data.dataset import ImageDataset, first_rows
from vaekit.defaults import Choices
from vaekit.device import resolve_device
from vaekit.engine import distributed
from vaekit.engine.ema import EMA
from vaekit.engine.lr_schedule import lr_factor
from vaekit.engine.precision import Precision
from vaekit.engine.step import StepInfo, update
from vaekit.evaluation.elbo import VALIDATION_METRICS, evaluate_elbo
from vaekit.evaluation.likelihood import latent_scaling
from vaekit.explore.grids import save_run_grids
from vaekit.io.card import write_model_folder
from vaekit.io.checkpoints import (
    NonFinite,
    first_nonfinite,
    list_checkpoints,
    load_training_state,
    load_weights,
    remove_leftovers,
    restore_newest_readable,
    save_checkpoint,
)
from vaekit.io.files import remove_partial_folders
from vaekit.io.run_folder import MetricsLog, RunDir, plot_curves
from vaekit.models import VAE, create_model
from vaekit.models.memory import require_trainable
from vaekit.objectives import create_objective
from vaekit.objectives.terms import skips_nonfinite
from vaekit.training.callbacks import Callback, CallbackList
from vaekit.training.progress import Clock, Progress, bounded_batch, share
from vaekit.training.recovery import NonFiniteRecovery, TrainingDiverged, diverged, first_nonfinite_row
from vaekit.training.sampler_fit import FitSamplerAtEnd
from vaekit.training.setup import (
    check_components,
    describe_model,
    fixed_batch,
    prepare_model,
    resolve_run,
    training_loader,
)
from vaekit.training.signals import TrainingStopped, stop_on_signals
from vaekit.training.state import apply_training_state, training_state
from vaekit.training.tracking import create_loggers

__all__ = ["Trainer", "TrainingDiverged", "TrainingStopped"]  # the errors live beside what raises them
CURVES_EVERY_S = 30.0  # curves.png is redrawn at an epoch's end at most this often, and always at the end


class Trainer:
    """Train ``config`` into ``run_dir``; ``resume=True`` continues from its newest checkpoint."""

    def __init__(
        self,
        config: Config,
        run_dir: Path | str,
        *,
        resume: bool = False,
        dataset: ImageDataset | None = None,
        model: VAE | None = None,
        callbacks: Sequence[Callback] = (),
        trust_code: bool = False,
        overwrite: bool = False,
        choose: set[str] | frozenset[str] = frozenset(),
    ):
        """``dataset`` (in-memory data) and ``model`` (e.g. ``VAE.from_modules``) replace what the
        config would build; ``trust_code`` allows importing code the config names; ``overwrite``
        replaces a run already in ``run_dir`` (otherwise refused unless ``resume``); ``choose``: the
        settings to pick from the data (see ``vaekit.defaults``)."""
        if model is not None:
            config = describe_model(config, model)
        check_components(config)  # before any run-folder, data or model work
        self.choices = Choices() if choose else None
        self._choose = set(choose)
        if model is None and "data.image_size" not in self._choose:
            require_trainable(config, trust_code)  # sizes known already: refused before the data is read
        self.run = RunDir(Path(run_dir))
        train = config.train
        if train.device != "auto":
            resolve_device(train.device)  # a device this machine lacks fails before any work
        self.ranks, rank_device = distributed.setup(train.device)
        if self.ranks.is_main:  # one writer per run, before any data, model or tracker work
            if resume:
                self.run.lock()
                self.run.mark()
            else:
                self.run.start(overwrite=overwrite)
        try:
            loggers = create_loggers(train.loggers, self.run.root) if self.ranks.is_main else []
            self.callbacks = CallbackList([*loggers, *callbacks, FitSamplerAtEnd()])
            self._build(config, resume, dataset, model, trust_code, rank_device)
        except BaseException:
            if self.ranks.is_main:
                self.run.unlock() if resume else self.run.remove_own_files()  # a failed start leaves nothing
            raise

    def _build(self, config, resume, dataset, model, trust_code, rank_device) -> None:
        train = config.train
        if train.threads:
            torch.set_num_threads(train.threads)
        torch.manual_seed(train.seed)
        self.device = rank_device or resolve_device(train.device)

        config, full = resolve_run(config, dataset, self._choose, self.choices, self.device, self.ranks)
        self.config = config  # resolved once: what trains, what config.yaml holds, what later commands read
        check_components(config)  # again, now that the data has said its image size
        if self.choices is not None:
            self._say(self.choices.block())
        train = config.train
        self.train_set = full.split("train", config.data.val_fraction, config.data.seed)
        self.val_set = full.split("val", config.data.val_fraction, config.data.seed)

        if model is None:
            require_trainable(config, trust_code)  # an estimate on the meta device, before any weight is allocated
            model = create_model(config, trust_code=trust_code)
        elif not model.image_shape:
            model.image_shape = full.image_shape
        prepare_model(model, config, resume)
        model.config = config  # the trained model describes itself (save_pretrained, vaekit.load)
        self.model: VAE = model.to(self.device)
        self.is_image_data = len(full.image_shape) == 3
        if train.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if self.ranks.distributed:
            distributed.broadcast_state(self.model)
        self.precision = Precision(
            train.precision, self.device, train.grad_clip, accumulate=train.accumulate, world=self.ranks.world,
            skip_nonfinite=skips_nonfinite(config),
        )  # fmt: skip
        self.recovery = NonFiniteRecovery(train)  # dropped updates and rollbacks (train.on_nonfinite: skip)
        self.objective = create_objective(self.model, config, self.precision, trust_code=trust_code)
        self.gradient_sync = distributed.gradient_sync(
            self.ranks, train.gradient_sync, self.objective.supports_ddp, config.objective.name
        )
        if self.gradient_sync == "ddp":
            replica = distributed.replicate(self.model, self.device, train.ddp_bucket_mb)
            self.objective.forward_pass = replica
            self.precision.sync_with(replica)
        self.ema = EMA(self.model, train.ema_decay, warmup=True) if train.ema_decay > 0 else None
        if train.accumulate > 1 and not self.objective.supports_accumulation:  # a plug-in objective
            raise ConfigError(f"train.accumulate: {type(self.objective).__name__} updates in several phases per step")
        if train.compile:
            self.model.encoder.compile()
            self.model.decoder.compile()
        self.loader = training_loader(self.train_set, config, self.device, self.ranks)
        self.steps_per_epoch = len(self.loader)
        self.step = 0
        self.elapsed = 0.0  # training seconds before this process (from the checkpoint)
        self._pending: list[tuple[int, dict[str, torch.Tensor]]] = []
        self._saved_step: int | None = None
        self.clock = Clock(0.0)
        self._curves_plotted = time.monotonic()  # when curves.png was last drawn (monotonic seconds)

        self.run.root.mkdir(parents=True, exist_ok=True)
        if self.ranks.is_main:
            remove_leftovers(self.run.checkpoints)
            remove_partial_folders(self.run.root, self.run.model.name)
        distributed.barrier()
        if resume:
            restore_newest_readable(self.run.checkpoints, self._restore, may_set_aside=self.ranks.is_main)
        distributed.barrier()  # every rank has looked for checkpoints before rank 0 writes any
        self.metrics: MetricsLog | None = None
        if self.ranks.is_main:
            reasons = self.choices.block() if self.choices is not None and self.choices.lines else None
            self.run.write_config(config.to_yaml(), reasons, keep_comments=resume)
            columns = (*self.objective.metric_names, *VALIDATION_METRICS)
            self.metrics = MetricsLog(self.run.metrics, columns, self.step if resume else None)
        self.fixed_images = fixed_batch(self.val_set if len(self.val_set) else self.train_set, train, self.device)
        self.last_validation: dict[str, float] = {}
        self._validated_step = -1  # the step of the last validation (a run ending there is not validated again)

    # ------------------------------------------------------------------ the loop
    def fit(self) -> Path:
        """Train until ``epochs``, ``max_steps``, ``max_time`` or a signal; return the run folder."""
        try:
            return self._fit()
        finally:
            if self.ranks.is_main:
                self.run.unlock()

    def _fit(self) -> Path:
        train = self.config.train
        planned = train.epochs * self.steps_per_epoch  # the plan; max_steps only stops early
        total = planned if train.max_steps is None else min(planned, train.max_steps)
        self.model.train()
        parameters = sum(p.numel() for p in self.model.parameters())
        self._say(
            f"{self.config.model.arch} VAE ({parameters / 1e6:.2f}M parameters, {train.precision}, {self.device}) on "
            f"{len(self.train_set)} train / {len(self.val_set)} held-out images from {self.config.data.source}"
            f" -> {self.run.root}"
            + (f" (resuming at step {self.step})" if self.step else "")
            + (f" on {self.ranks.world} processes ({self.gradient_sync})" if self.ranks.distributed else "")
        )
        if self.ranks.is_main:
            self.callbacks.on_start(self)  # trackers start here, outside the clock
        self.clock = Clock(self.elapsed)
        epoch, start = divmod(self.step, self.steps_per_epoch)
        stop_reason = wish = None  # agreed by every rank / this rank's own
        vote = distributed.StopVote(self.device) if self.ranks.distributed else None
        bar = Progress(total, self.step, self.run.root.name, self.ranks.is_main, train.max_time, self.clock)
        with stop_on_signals() as self.stop:  # which signal asked to stop (callbacks read it too)
            while self.step < total and stop_reason is None:
                rolled_back = False
                for batch_index, batch in enumerate(self.loader.epoch(epoch, start), start=start):
                    self._set_lr(self.step)
                    progress = epoch + batch_index / self.steps_per_epoch
                    info = StepInfo(self.step, progress, planned, self.loader.batch_size)
                    metrics = self._update(batch, info)
                    if self.precision.skipped:  # dropped: no EMA update, no row; the step still counts
                        if self.recovery.skipped(self.step):
                            self._roll_back()
                            rolled_back = True
                            break  # the loop starts again from the checkpoint's step
                    else:
                        if self.ema is not None:
                            self.ema.update()
                        self._pending.append((self.step, metrics))
                    self.step += 1
                    if self.ranks.is_main:
                        self.callbacks.on_step(self, self.step, metrics)
                    self.clock.images += len(batch) * self.ranks.world
                    bar.advance()
                    if train.max_time is not None and self.clock.elapsed() >= train.max_time:
                        wish = wish or "time budget"
                    wish = self.stop.signal or wish
                    stop_reason = wish if vote is None else vote.agree(wish)
                    if self.step % train.log_every == 0:
                        self._flush(bar)
                    if self.step % train.checkpoint_every == 0 and self.step % self.steps_per_epoch:
                        self._checkpoint()  # an epoch's last step is saved after its validation, below
                    if stop_reason or self.step >= total:
                        break
                if rolled_back:
                    epoch, start = divmod(self.step, self.steps_per_epoch)
                    continue
                interrupted = stop_reason not in (None, "time budget")
                epoch_done = self.step % self.steps_per_epoch == 0
                if epoch_done or not interrupted:  # a stopped run keeps a partial row pending, as the
                    self._flush(bar)  # straight run would: the resumed log then matches it row for row
                if epoch_done:
                    self._end_of_epoch(epoch)
                epoch, start = epoch + 1, 0
            if vote is not None:
                vote.finish()
            self._checkpoint()
            bar.close()
            # model/ is written inside the signal block: a SIGTERM now waits for it to be complete
            self._finish(interrupted_by=stop_reason if stop_reason not in (None, "time budget") else None)
        return self.run.root

    # ------------------------------------------------------------------ pieces of the loop
    def _update(self, batch: torch.Tensor, info: StepInfo) -> dict[str, torch.Tensor]:
        """One optimiser update from this process's images (see ``precision.update``)."""
        seed = noise.step_seed(self.config.train.seed, info.step)
        return update(self.objective, self.precision, batch, info, seed, (self.ranks.rank, self.ranks.world))

    def _say(self, message: str) -> None:
        if self.ranks.is_main:
            tqdm.write(message)

    def _roll_back(self) -> None:
        """Back to the newest checkpoint with half the learning rate, saying so; after
        ``max_rollbacks`` (or with no checkpoint to go back to) the run stops as diverged."""
        checkpoints = list_checkpoints(self.run.checkpoints)
        recovery = self.recovery
        if not recovery.can_roll_back() or not checkpoints:
            self._diverged(f"{recovery.reason} (by step {self.step + 1}, after {recovery.rollbacks} rollback(s))")
        state = recovery.state_dict()
        self._restore(checkpoints[-1])
        recovery.load_state_dict(state)
        recovery.rolled_back()
        if self.metrics is not None:
            self.metrics.truncate_after(self.step)
        self._say(
            f"warning: {recovery.reason}; rolled back to step {self.step} ({checkpoints[-1].name}), learning rate "
            f"x{recovery.lr_scale:g} (rollback {recovery.rollbacks} of at most {self.config.train.max_rollbacks})"
        )

    def _set_lr(self, step: int) -> None:
        factor = lr_factor(self.config.train, step, self.steps_per_epoch) * self.recovery.lr_scale
        for optimizer in self.objective.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * factor

    def _flush(self, bar: Progress) -> None:
        """Check the pending step results for NaN/inf, then log their mean as one row."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        steps, names = [step for step, _ in pending], list(pending[0][1])
        table = torch.stack([torch.stack([s[name].float().to(self.device) for name in names]) for _, s in pending])
        if self.ranks.distributed:
            table = distributed.mean_over_ranks(table, self.ranks.world)
        problem = first_nonfinite_row(table.cpu(), names, steps)
        if problem:
            self._diverged(problem)
        if self.metrics is None:
            return
        means = dict(zip(names, table.cpu().mean(0).tolist(), strict=True))
        rate = self.clock.images_per_s()
        lr = next(iter(self.objective.optimizers.values())).param_groups[0]["lr"]  # what the optimiser used
        epochs_done = (steps[-1] + 1) / self.steps_per_epoch
        row = {"step": steps[-1] + 1, "epoch": epochs_done, "split": "train", "elapsed_s": self.clock.elapsed()}
        row = {**row, "lr": lr, "images_per_s": rate, **means}
        self.metrics.write(row)
        self.callbacks.on_log(self, row)
        kl = means.get("kl", means.get("kl_real"))  # intro objectives log kl_real / kl_fake; distill none
        status = {"loss": f"{means['loss']:.4g}", "kl": None if kl is None else f"{kl:.3g}", "img_s": f"{rate:.0f}"}
        bar.show(row["step"], {key: value for key, value in status.items() if value is not None})

    def _end_of_epoch(self, epoch: int) -> None:
        """Validation ELBO, grids, curves (rank 0) and a checkpoint."""
        warning = self.objective.end_of_epoch(epoch)
        if warning:
            self._say(f"warning (epoch {epoch + 1}): {warning}")
        if self.metrics is not None:
            self._validate_and_plot(epoch, f"epoch-{epoch + 1:03d}")
        self._checkpoint()

    def _validate_and_plot(self, epoch: int, tag: str, seconds: float | None = None) -> None:
        """Held-out ELBO (a ``val`` row, within ``seconds``), grids tagged ``tag``, curves now and then."""
        if len(self.val_set):
            images, batch = first_rows(self.val_set.images, 2048), bounded_batch(self.config.train.batch_size, seconds)
            with self._averaged():
                val = evaluate_elbo(self.model, images, batch, seconds=seconds)
            measured = val.pop("images")
            if seconds is not None:
                self._say(f"final validation on {share(measured, len(images), seconds)} held-out images")
            self.last_validation = val
            self.metrics.write({"step": self.step, "epoch": self.step / self.steps_per_epoch, "split": "val", **val})
        self._validated_step = self.step
        images = self.save_grids(tag)
        if time.monotonic() - self._curves_plotted >= CURVES_EVERY_S:  # a plot costs ~0.5-1.5 s: not every short epoch
            plot_curves(self.metrics.read(), self.run.curves)
            self._curves_plotted = time.monotonic()
        self.callbacks.on_validation(self, epoch, self.last_validation, images)

    def _share(self, measured: int, available: int) -> str:
        bound = self.config.train.final_pass_seconds
        return f"{measured:,}" + (
            f" of {available:,} (train.final_pass_seconds {bound:g})" if measured < available else ""
        )

    def save_grids(self, tag: str) -> dict[str, Path]:
        """Reconstructions of a fixed batch and samples of fixed latents, written to images/
        (nothing for vector data)."""
        if not self.is_image_data:
            return {}
        train = self.config.train
        with self._averaged():
            return save_run_grids(
                self.model, self.fixed_images, self.run.images, tag, train.grid_size, train.seed,
                self.objective.export_context,
            )  # fmt: skip

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self) -> None:
        if self._saved_step == self.step:
            return
        state = training_state(
            self.step, self._pending, self.clock.elapsed(), self.objective, self.ema, self.precision, self.recovery
        )
        self._require_finite(state)  # on every rank, so that all of them stop together
        self._saved_step = self.step
        if self.ranks.is_main:
            path = save_checkpoint(
                self.run.checkpoints, self.step, self.model, state, self.config.train.keep_checkpoints
            )
            self.callbacks.on_checkpoint(self, path)
        distributed.barrier()

    def _require_finite(self, state: dict) -> None:
        """Nothing non-finite is saved: the weights and buffers, the training state (optimisers,
        discriminator, EMA shadows, scaler) and the metrics of the steps not yet logged."""
        for step, scalars in self._pending:
            bad = first_nonfinite(scalars)
            if bad:
                self._diverged(f"{bad} became {scalars[bad].float().item()} at step {step + 1}")
        bad = first_nonfinite(self.model.state_dict(), "weight") or first_nonfinite(state)
        if bad:
            self._diverged(f"{bad} became non-finite by step {self.step}")

    def _diverged(self, what: str) -> typing.NoReturn:
        raise diverged(what, list_checkpoints(self.run.checkpoints))

    def _restore(self, checkpoint: Path) -> None:
        load_weights(self.model, checkpoint)
        state = load_training_state(checkpoint)
        self.step, self.elapsed, self._pending = apply_training_state(
            state, self.objective, self.ema, self.precision, self.recovery
        )
        self._saved_step = self.step
        budget = self.config.train.max_time
        if budget is not None and self.elapsed >= budget:
            raise ConfigError(
                f"train.max_time: this run has trained {self.elapsed:.0f} s of its {budget:g} s budget; "
                "raise it to continue (--set train.max_time=...)"
            )

    def _finish(self, interrupted_by: str | None) -> None:
        """Write model/ (weights + config) and the final grids and curves (rank 0)."""
        if interrupted_by:
            if self.metrics is not None:
                plot_curves(self.metrics.read(), self.run.curves)
                self.callbacks.on_end(self, self.last_validation, True)
            raise TrainingStopped(
                f"stopped by {interrupted_by} at step {self.step}; "
                f"continue with: vaekit train --resume {self.run.root}",
                interrupted_by,
            )
        if self.metrics is None:
            return
        train = self.config.train
        if self._validated_step != self.step:  # a run that stopped mid-epoch (max_steps, max_time) is validated too
            self._validate_and_plot(self.step // self.steps_per_epoch, "final", train.final_pass_seconds)
        else:
            self.save_grids("final")
        plot_curves(self.metrics.read(), self.run.curves)
        with self._averaged(), self.objective.export_context():
            images, seconds = first_rows(self.train_set.images, 2048), train.final_pass_seconds
            scaling = latent_scaling(self.model, images, bounded_batch(train.batch_size, seconds), seconds=seconds)
            self._say(f"latent statistics over {share(scaling['images'], len(images), seconds)} training images")
            try:
                write_model_folder(self.run.model, self.model, self.config, self.step, self.last_validation, scaling)
            except NonFinite as err:
                self._diverged(f"{err.name} became non-finite by step {self.step}")
            self.callbacks.on_model_written(self, self.run.model)
        self.callbacks.on_end(self, self.last_validation, False)

    def _averaged(self) -> contextlib.AbstractContextManager:
        """The EMA weights (``train.ema_decay``) swapped in for evaluation, grids and export."""
        return self.ema.applied() if self.ema is not None else contextlib.nullcontext()
