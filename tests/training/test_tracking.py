"""Trackers log what a run does, read back with each library's own reader (no mocks)."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest

from tests.helpers import tiny_config
from vaekit.config import ConfigError
from vaekit.training.callbacks import Callback
from vaekit.training.trainer import Trainer

LOGGED = {"train.log_every": 2, "train.epochs": 2}


def train_with(tmp_path: Path, loggers: list[str], callbacks=()) -> Path:
    config = tiny_config(**LOGGED, **{"train.loggers": loggers})
    return Trainer(config, tmp_path / "run", callbacks=callbacks).fit()


def test_tensorboard_event_files_hold_scalars_images_and_the_config(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = train_with(tmp_path, ["csv", "tensorboard"])
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0, "scalars": 0}).Reload()
    tags = events.Tags()
    assert {"train/loss", "train/lr", "train/kl", "val/neg_elbo", "final/neg_elbo"} <= set(tags["scalars"])
    assert {"recon", "samples"} <= set(tags["images"])
    losses = events.Scalars("train/loss")
    csv_rows = [r for r in (run / "metrics.csv").read_text().splitlines()[1:] if ",train," in r]
    assert [e.step for e in losses] == [int(r.split(",")[0]) for r in csv_rows]
    assert "config" in " ".join(tags["tensors"])


def test_a_run_shorter_than_one_epoch_logs_validation_final_metrics_and_images(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tiny_config(**LOGGED, **{"train.loggers": ["csv", "tensorboard"], "train.max_steps": 3})
    run = Trainer(config, tmp_path / "run").fit()  # 7 steps make an epoch: it stops before the first ends
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0, "scalars": 0}).Reload()
    assert {"val/neg_elbo", "final/neg_elbo"} <= set(events.Tags()["scalars"])
    assert {"recon", "samples"} <= set(events.Tags()["images"])
    assert [e.step for e in events.Scalars("val/neg_elbo")] == [3]
    assert ",val," in (run / "metrics.csv").read_text()
    assert (run / "images" / "samples-final.png").is_file()


def test_mlflow_file_store_holds_params_metrics_and_artifacts(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run = train_with(tmp_path, ["mlflow"])
    client = mlflow.tracking.MlflowClient(tracking_uri=(run / "mlruns").resolve().as_uri())
    (logged,) = client.search_runs([client.get_experiment_by_name("vaekit").experiment_id])
    assert logged.info.status == "FINISHED"
    assert logged.data.params["train.batch_size"] == "32" and logged.data.params["model.arch"] == "conv"
    history = client.get_metric_history(logged.info.run_id, "train_loss")
    assert [m.step for m in history] == [2, 4, 6, 7, 8, 10, 12, 14]  # and the epoch end (7)
    assert all(math.isfinite(m.value) for m in history)
    assert "val_neg_elbo" in logged.data.metrics and "final_neg_elbo" in logged.data.metrics
    artifacts = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert {"config.yaml", "images"} <= artifacts


def _wandb_records(path: Path):
    """The protobuf records of an offline W&B run file (a LevelDB-style log after a 7-byte header)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    position, block, pending = 7, 32768, b""
    while position + 7 <= len(data):
        room = block - position % block
        if room < 7:
            position += room
            continue
        length, kind = struct.unpack("<HB", data[position + 4 : position + 7])
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # FULL or LAST
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record
            pending = b""
        elif length == 0 and kind == 0:
            break


@pytest.mark.slow  # about 4 s (wandb's own start-up): make test-all runs it
def test_wandb_offline_run_holds_the_history_and_the_config(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = train_with(tmp_path, ["wandb"])
    wandb.teardown()  # the run file is written by W&B's service process: wait until it has closed it
    (path,) = (run / "wandb").glob("offline-run-*/run-*.wandb")
    records = list(_wandb_records(path))
    kinds = [r.WhichOneof("record_type") for r in records]
    assert kinds[-1] == "exit", f"the run file ends without its exit record: {kinds}"
    history = [
        {item.key or "/".join(item.nested_key): item.value_json for item in r.history.item}
        for r, kind in zip(records, kinds, strict=True)
        if kind == "history"
    ]
    logged_steps = [int(h["_step"]) for h in history if "train/loss" in h]
    assert logged_steps == [2, 4, 6, 7, 8, 10, 12, 14], kinds  # and the epoch end (7)
    assert any("val/neg_elbo" in h for h in history)
    (run_record,) = [r.run for r, kind in zip(records, kinds, strict=True) if kind == "run"]
    config_keys = {item.key for item in run_record.config.update}
    assert {"model", "train", "data"} <= config_keys


def test_an_unknown_logger_is_refused_before_any_work(tmp_path):
    with pytest.raises(
        ConfigError, match=r"train\.loggers: unknown logger 'tensorbord' \(did you mean 'tensorboard'\?\)"
    ):
        train_with(tmp_path, ["tensorbord"])
    assert not (tmp_path / "run").exists()


def test_callbacks_see_every_step_log_validation_checkpoint_and_end(tmp_path):
    seen: dict[str, list] = {"start": [], "step": [], "log": [], "validation": [], "checkpoint": [], "end": []}

    class Recorder(Callback):
        def on_start(self, trainer):
            seen["start"].append(trainer.step)

        def on_step(self, trainer, step, metrics):
            seen["step"].append(step)

        def on_log(self, trainer, row):
            seen["log"].append((row["step"], row["lr"]))

        def on_validation(self, trainer, epoch, metrics, images):
            seen["validation"].append((epoch, sorted(metrics)[:2], sorted(images)))

        def on_checkpoint(self, trainer, path):
            seen["checkpoint"].append(path.name)

        def on_end(self, trainer, final, interrupted):
            seen["end"].append((interrupted, "neg_elbo" in final))

    train_with(tmp_path, ["csv"], callbacks=[Recorder()])
    assert seen["start"] == [0] and seen["step"] == list(range(1, 15))
    assert [step for step, _ in seen["log"]] == [2, 4, 6, 7, 8, 10, 12, 14]
    assert [epoch for epoch, _, _ in seen["validation"]] == [0, 1]
    assert seen["validation"][0][2] == ["recon", "samples"]
    assert "step-00000014" in seen["checkpoint"] and seen["end"] == [(False, True)]


def test_without_a_terminal_progress_is_plain_lines(tmp_path, capsys):
    train_with(tmp_path, ["csv"])
    out = capsys.readouterr()
    assert "\r" not in out.out + out.err
    assert "step 2/14 loss=" in out.out
