import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import tiny_config
from vaekit.api import load, train
from vaekit.config import Config
from vaekit.io.checkpoints import CheckpointError, list_checkpoints
from vaekit.io.run_folder import RunExists
from vaekit.objectives.elbo import ELBO
from vaekit.training import setup
from vaekit.training.callbacks import Callback
from vaekit.training.trainer import Trainer, TrainingDiverged, TrainingStopped

# Everything that consumes randomness: flips (data order), dynamic binarisation and the posterior
# sample (global RNG), BatchNorm running statistics (buffers).
RESUME_CONFIG = {
    "likelihood.name": "bernoulli",
    "likelihood.binarize": "dynamic",
    "data.flip": True,
    "model.norm": "batch",
    "train.epochs": 3,
}


def _weights(run):
    return load_file(str(run / "model" / "model.safetensors"))


def _loss_becomes(monkeypatch, value: float, at_step: int) -> None:
    """ELBO's loss is ``value`` at (1-based) step ``at_step``; every other step as it is."""
    original = ELBO.step

    def step(self, batch, info):
        scalars = original(self, batch, info)
        if info.step == at_step - 1:
            scalars["loss"] = torch.tensor(value)
        return scalars

    monkeypatch.setattr(ELBO, "step", step)


def _assert_identical(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_a_run_stopped_and_resumed_ends_bit_identical_to_a_straight_run(tmp_path):
    straight = Trainer(tiny_config(**RESUME_CONFIG, **{"train.max_steps": 17}), tmp_path / "a").fit()
    first = Trainer(tiny_config(**RESUME_CONFIG, **{"train.max_steps": 10}), tmp_path / "b").fit()
    resumed = train(resume=first, overrides=["train.max_steps=17"])
    assert resumed == tmp_path / "b"
    _assert_identical(_weights(straight), _weights(resumed))
    steps = [int(r.split(",")[0]) for r in (tmp_path / "b" / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == sorted(steps) and steps[-1] == 17


def test_sigterm_saves_a_checkpoint_and_the_run_resumes_exactly(tmp_path, monkeypatch):
    straight = Trainer(tiny_config(**RESUME_CONFIG), tmp_path / "a").fit()

    original = ELBO.step

    def terminated_at_step_5(self, batch, info):
        if info.step == 5:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, batch, info)

    monkeypatch.setattr(ELBO, "step", terminated_at_step_5)
    stopped = tmp_path / "b"
    with pytest.raises(TrainingStopped, match="stopped by SIGTERM at step 6; continue with") as raised:
        Trainer(tiny_config(**RESUME_CONFIG), stopped).fit()
    assert raised.value.exit_code == 143
    assert list_checkpoints(stopped / "checkpoints")[-1].name == "step-00000006"
    assert not (stopped / "model").exists()  # interrupted runs do not pretend to be finished
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored

    monkeypatch.setattr(ELBO, "step", original)
    _assert_identical(_weights(straight), _weights(train(resume=stopped)))


def test_after_a_crash_the_run_resumes_from_its_last_checkpoint_exactly(tmp_path, monkeypatch):
    straight = Trainer(tiny_config(**RESUME_CONFIG), tmp_path / "a").fit()
    original = ELBO.step

    def crashes_at_step_11(self, batch, info):
        if info.step == 10:
            raise RuntimeError("simulated crash")
        return original(self, batch, info)

    monkeypatch.setattr(ELBO, "step", crashes_at_step_11)
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(tiny_config(**RESUME_CONFIG), tmp_path / "b").fit()
    assert list_checkpoints(tmp_path / "b" / "checkpoints")[-1].name == "step-00000008"
    logged = [r.split(",")[0] for r in (tmp_path / "b" / "metrics.csv").read_text().splitlines()[1:]]
    assert "9" in logged  # a row past the checkpoint, which resume must drop

    monkeypatch.setattr(ELBO, "step", original)
    resumed = train(resume=tmp_path / "b")
    _assert_identical(_weights(straight), _weights(resumed))
    rows = [tuple(r.split(",")[:3:2]) for r in (resumed / "metrics.csv").read_text().splitlines()[1:]]
    assert len(rows) == len(set(rows))  # no (step, split) logged twice


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    _loss_becomes(monkeypatch, float("nan"), at_step=6)
    config = tiny_config(**{"train.checkpoint_every": 4, "train.log_every": 3})
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 6.*step-00000004"):
        Trainer(config, tmp_path / "run").fit()
    assert [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")] == ["step-00000004"]
    assert load(tmp_path / "run" / "checkpoints" / "step-00000004") is not None  # the good checkpoint still loads
    with pytest.raises(CheckpointError, match="did not finish"):
        load(tmp_path / "run")  # an unfinished run is not silently replaced by a checkpoint


def test_run_directory_is_complete(tmp_path):
    run = Trainer(tiny_config(), tmp_path / "run").fit()
    for name in ("config.yaml", "metrics.csv", "curves.png", "model/model.safetensors", "model/config.yaml"):
        assert (run / name).is_file(), name
    for tag in ("epoch-001", "epoch-002", "final"):
        assert (run / "images" / f"recon-{tag}.png").is_file()
        assert (run / "images" / f"samples-{tag}.png").is_file()
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,epoch,split,elapsed_s,lr,images_per_s,loss,neg_elbo")
    assert sum(",val," in r for r in rows) == 2


def test_keeps_only_the_newest_checkpoints(tmp_path):
    config = tiny_config(**{"train.checkpoint_every": 2, "train.keep_checkpoints": 2})
    run = Trainer(config, tmp_path / "run").fit()
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step-00000012", "step-00000014"]


def test_a_finished_run_is_not_overwritten_without_resume(tmp_path):
    Trainer(tiny_config(**{"train.max_steps": 2}), tmp_path / "run").fit()
    with pytest.raises(RunExists, match="already holds a run"):
        Trainer(tiny_config(), tmp_path / "run")


def test_time_budget_stops_cleanly_and_writes_the_model(tmp_path):
    run = Trainer(tiny_config(**{"train.max_time": 1e-9, "train.epochs": 100}), tmp_path / "run").fit()
    assert (run / "model" / "model.safetensors").is_file()
    assert list_checkpoints(run / "checkpoints")[-1].name == "step-00000001"


def test_bf16_autocast_trains_on_cpu(tmp_path):
    run = Trainer(tiny_config(**{"train.precision": "bf16", "train.max_steps": 4}), tmp_path / "run").fit()
    losses = [float(r.split(",")[6]) for r in (run / "metrics.csv").read_text().splitlines()[1:] if ",train," in r]
    assert all(torch.isfinite(torch.tensor(losses)))


@pytest.mark.parametrize(("speedup", "resolved"), [(3.0, "bf16"), (0.5, "fp32")])
def test_auto_precision_is_resolved_by_the_measured_bf16_speed_and_recorded(tmp_path, monkeypatch, speedup, resolved):
    monkeypatch.setattr(setup, "bf16_speedup", lambda device: speedup)
    run = Trainer(tiny_config(**{"train.precision": "auto", "train.max_steps": 2}), tmp_path / "run").fit()
    assert Config.from_yaml(run / "config.yaml").train.precision == resolved  # a resume repeats it exactly


def test_fp16_without_cuda_is_refused(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA present: fp16 is allowed")
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        Trainer(tiny_config(**{"train.precision": "fp16"}), tmp_path / "run")


# ------------------------------------------------------------------ what resume restores
def test_resume_restores_the_global_random_state_that_users_code_draws_from(tmp_path):
    from vaekit.training.callbacks import Callback

    draws = {}

    class Dropoutish(Callback):  # like a user's dropout layer: it draws from torch's global RNG
        def on_step(self, trainer, step, metrics):
            draws[step] = torch.rand(1).item()

    Trainer(tiny_config(**{"train.max_steps": 9}), tmp_path / "a", callbacks=[Dropoutish()]).fit()
    straight = dict(draws)
    Trainer(tiny_config(**{"train.max_steps": 5}), tmp_path / "b", callbacks=[Dropoutish()]).fit()
    draws.clear()
    config = tiny_config(**{"train.max_steps": 9})
    Trainer(config, tmp_path / "b", resume=True, callbacks=[Dropoutish()]).fit()
    assert draws == {step: straight[step] for step in range(6, 10)}


def _optimizer_lrs(config, run, resume=False, overrides=()):
    from vaekit.training.callbacks import Callback

    seen = {}

    class Watch(Callback):
        def on_step(self, trainer, step, metrics):
            seen[step] = trainer.objective.optimizers["model"].param_groups[0]["lr"]

    if resume:
        config = Config.from_yaml(run / "config.yaml").with_overrides(list(overrides))
    Trainer(config, run, resume=resume, callbacks=[Watch()]).fit()
    return seen


def test_the_schedule_reaches_the_optimiser_at_every_global_step_also_after_a_resume(tmp_path):
    from vaekit.engine.lr_schedule import lr_factor

    settings = {"train.lr_schedule": "cosine", "train.epochs": 3, "train.lr": 0.01}
    straight = _optimizer_lrs(tiny_config(**settings), tmp_path / "a")
    first = _optimizer_lrs(tiny_config(**settings, **{"train.max_steps": 10}), tmp_path / "b")
    rest = _optimizer_lrs(None, tmp_path / "b", resume=True, overrides=["train.max_steps=null"])
    config = tiny_config(**settings)
    expected = {step: 0.01 * lr_factor(config.train, step - 1, 7) for step in range(1, 22)}
    assert straight == pytest.approx(expected) and {**first, **rest} == pytest.approx(expected)
    assert len(set(straight.values())) > 15  # the lr really moves
    rows = [r.split(",") for r in (tmp_path / "a" / "metrics.csv").read_text().splitlines()[1:]]
    logged = {int(r[0]): float(r[4]) for r in rows if r[2] == "train"}
    assert logged == pytest.approx({step: expected[step] for step in logged}, rel=1e-5)


def test_a_learning_rate_set_on_resume_wins_over_the_checkpoints(tmp_path):
    run = Trainer(tiny_config(**{"train.max_steps": 4}), tmp_path / "run").fit()
    seen = _optimizer_lrs(None, run, resume=True, overrides=["train.max_steps=8", "train.lr=0.0003"])
    assert set(seen.values()) == {0.0003}


def test_the_first_row_after_a_crash_and_resume_averages_the_same_steps_as_a_straight_run(tmp_path, monkeypatch):
    settings = {"train.log_every": 3, "train.checkpoint_every": 2}
    Trainer(tiny_config(**settings), tmp_path / "a").fit()
    original = ELBO.step

    def crashes_at_step_6(self, batch, info):
        if info.step == 5:
            raise RuntimeError("simulated crash")
        return original(self, batch, info)

    monkeypatch.setattr(ELBO, "step", crashes_at_step_6)
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(tiny_config(**settings), tmp_path / "b").fit()
    monkeypatch.setattr(ELBO, "step", original)
    train(resume=tmp_path / "b")  # from step 4, whose row (steps 4..6) began before the checkpoint
    straight, resumed = ((tmp_path / r / "metrics.csv").read_text().splitlines() for r in ("a", "b"))

    def rows(lines):
        return {(r.split(",")[0], r.split(",")[2]): r.split(",")[6:] for r in lines[1:]}

    assert rows(straight) == rows(resumed)


# ------------------------------------------------------------------ nothing bad reaches a checkpoint
def test_non_finite_weights_never_reach_a_checkpoint(tmp_path, monkeypatch):
    original = ELBO.step

    def poisons_the_weights_at_step_6(self, batch, info):
        scalars = original(self, batch, info)
        if info.step == 5:
            with torch.no_grad():
                next(self.model.parameters()).fill_(float("inf"))
        return scalars

    monkeypatch.setattr(ELBO, "step", poisons_the_weights_at_step_6)
    config = tiny_config(**{"train.checkpoint_every": 2, "train.log_every": 50})
    with pytest.raises(TrainingDiverged, match=r"non-finite.*step-00000004"):
        Trainer(config, tmp_path / "run").fit()
    assert list_checkpoints(tmp_path / "run" / "checkpoints")[-1].name == "step-00000004"


def test_a_nan_loss_between_log_rows_is_caught_before_the_checkpoint(tmp_path, monkeypatch):
    _loss_becomes(monkeypatch, float("nan"), at_step=3)
    config = tiny_config(**{"train.checkpoint_every": 4, "train.log_every": 100})
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 3.*no checkpoint"):
        Trainer(config, tmp_path / "run").fit()
    assert list_checkpoints(tmp_path / "run" / "checkpoints") == []


def test_a_crash_during_validation_does_not_lose_the_epochs_row_and_grids(tmp_path, monkeypatch):
    import vaekit.training.trainer as trainer_module

    real = trainer_module.evaluate_elbo
    calls = []

    def fails_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("killed during validation")
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "evaluate_elbo", fails_once)
    config = tiny_config(**{"train.checkpoint_every": 1})  # a checkpoint due on the epoch boundary itself
    with pytest.raises(RuntimeError, match="killed during validation"):
        Trainer(config, tmp_path / "run").fit()
    train(resume=tmp_path / "run")
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[:3] for r in rows if ",val," in r] == [["7", "1", "val"], ["14", "2", "val"]]
    assert (tmp_path / "run" / "images" / "recon-epoch-001.png").is_file()


# ------------------------------------------------------------------ one run, one writer, honest folders
def test_a_folder_holding_a_run_is_refused_unless_resumed_or_overwritten(tmp_path):
    Trainer(tiny_config(**{"train.max_steps": 2}), tmp_path / "run").fit()
    with pytest.raises(RunExists, match=r"--resume.*--overwrite"):
        Trainer(tiny_config(), tmp_path / "run")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "metrics.csv").write_text("step\n")
    with pytest.raises(RunExists, match=r"metrics\.csv"):
        Trainer(tiny_config(), tmp_path / "other")
    Trainer(tiny_config(**{"train.max_steps": 3}), tmp_path / "run", overwrite=True).fit()
    assert [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")] == ["step-00000003"]


def test_a_live_lock_refuses_a_second_writer_and_a_dead_ones_is_taken_over(tmp_path):
    import socket
    import subprocess

    from vaekit.io.run_folder import RunInUse

    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").write_text(f"1 {socket.gethostname()}\n")  # pid 1 is alive
    with pytest.raises(RunInUse, match="process 1"):
        Trainer(tiny_config(), run)
    gone = subprocess.run(["true"]).args and subprocess.Popen(["true"])
    gone.wait()
    (run / ".lock").write_text(f"{gone.pid} {socket.gethostname()}\n")
    with pytest.warns(UserWarning, match="taking over the lock"):
        Trainer(tiny_config(**{"train.max_steps": 2}), run).fit()
    assert not (run / ".lock").exists()  # released at the end


def test_resume_into_another_folder_forks_and_leaves_the_original_untouched(tmp_path):
    import hashlib

    def snapshot(folder):
        return {
            p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
        }

    straight = Trainer(tiny_config(**RESUME_CONFIG, **{"train.max_steps": 12}), tmp_path / "a").fit()
    source = Trainer(tiny_config(**RESUME_CONFIG, **{"train.max_steps": 6}), tmp_path / "b").fit()
    before = snapshot(source)
    fork = train(resume=source, out=tmp_path / "c", overrides=["train.max_steps=12"])
    assert fork == tmp_path / "c" and snapshot(source) == before
    _assert_identical(_weights(straight), _weights(fork))
    with pytest.raises(ValueError, match="not --preset/--config"):
        train(preset="conv-mnist", resume=source)


def test_resume_cleans_leftovers_survives_a_nul_row_and_skips_an_unreadable_newest_checkpoint(tmp_path):
    run = Trainer(tiny_config(**{"train.max_steps": 6, "train.checkpoint_every": 2}), tmp_path / "run").fit()
    (run / "checkpoints" / ".tmp-abc").mkdir()
    (run / "checkpoints" / "step-00000099").mkdir()
    with open(run / "metrics.csv", "ab") as handle:
        handle.write(b"\0\0\0\0\n")
    newest = list_checkpoints(run / "checkpoints")[-1]
    (newest / "model.safetensors").write_bytes(b"truncated")
    with pytest.warns(UserWarning) as warned:
        train(resume=run, overrides=["train.max_steps=8"])
    messages = " ".join(str(w.message) for w in warned)
    assert "unreadable weights" in messages and "resuming from the checkpoint before it" in messages
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ".tmp-abc" not in names and "step-00000099" not in names and "unreadable-step-00000006" in names
    assert list_checkpoints(run / "checkpoints")[-1].name == "step-00000008"


def test_a_run_that_used_its_time_budget_says_so_on_resume(tmp_path):
    from vaekit.config import ConfigError

    run = Trainer(tiny_config(**{"train.max_time": 1e-9}), tmp_path / "run").fit()
    with pytest.raises(ConfigError, match=r"train.max_time.*raise it"):
        train(resume=run)
    train(resume=run, overrides=["train.max_time=600", "train.max_steps=5"])


def test_introspective_runs_write_their_validation_rows(tmp_path):
    config = tiny_config(**{"objective.name": "soft-intro", "likelihood.output": "identity"})
    run = Trainer(config, tmp_path / "run").fit()
    lines = (run / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    val = [dict(zip(header, r.split(","), strict=True)) for r in lines[1:] if ",val," in r]
    assert len(val) == 2 and all(float(v["neg_elbo"]) > 0 for v in val)


def test_the_ema_of_all_weights_is_what_the_model_folder_holds_and_it_resumes_exactly(tmp_path):
    settings = {"train.ema_decay": 0.9, "train.epochs": 2}
    straight = Trainer(tiny_config(**settings), tmp_path / "a")
    straight.fit()
    saved = _weights(tmp_path / "a")
    for name in straight.ema.shadow:  # the saved weights are the average, not the live ones
        torch.testing.assert_close(saved[name], straight.ema.shadow[name])
    assert any(not torch.equal(saved[n], p.detach()) for n, p in straight.model.named_parameters())
    first = Trainer(tiny_config(**settings, **{"train.max_steps": 6}), tmp_path / "b").fit()
    resumed = train(resume=first, overrides=["train.max_steps=null"])
    _assert_identical(saved, _weights(resumed))


# ------------------------------------------------------------------ the single doors (findings D1-D26)
def test_a_non_finite_buffer_never_reaches_a_checkpoint_or_the_model_folder(tmp_path, monkeypatch):
    original = ELBO.step

    def poisons_a_running_variance_at_step_5(self, batch, info):
        scalars = original(self, batch, info)
        if info.step == 4:
            buffer = next(name for name, _ in self.model.named_buffers() if name.endswith("running_var"))
            self.model.get_buffer(buffer).fill_(float("inf"))
        return scalars

    monkeypatch.setattr(ELBO, "step", poisons_a_running_variance_at_step_5)
    config = tiny_config(**{**RESUME_CONFIG, "train.checkpoint_every": 2, "train.log_every": 50})
    with pytest.raises(TrainingDiverged, match=r"running_var became non-finite.*step-00000004"):
        Trainer(config, tmp_path / "run").fit()
    kept = list_checkpoints(tmp_path / "run" / "checkpoints")
    assert [p.name for p in kept] == ["step-00000002", "step-00000004"]
    assert all(torch.isfinite(t).all() for p in kept for t in load_file(str(p / "model.safetensors")).values())
    assert not (tmp_path / "run" / "model").exists()


def test_non_finite_optimizer_state_stops_the_run_before_it_is_saved(tmp_path, monkeypatch):
    original = ELBO.step

    def poisons_adams_second_moment_at_step_3(self, batch, info):
        scalars = original(self, batch, info)
        if info.step == 2:
            state = next(iter(self.optimizers["model"].state.values()))
            state["exp_avg_sq"].fill_(float("inf"))
        return scalars

    monkeypatch.setattr(ELBO, "step", poisons_adams_second_moment_at_step_3)
    with pytest.raises(TrainingDiverged, match=r"exp_avg_sq became non-finite by step 4.*no checkpoint"):
        Trainer(tiny_config(**{"train.log_every": 50}), tmp_path / "run").fit()
    assert list_checkpoints(tmp_path / "run" / "checkpoints") == []


def test_steps_that_are_finite_but_whose_logged_mean_overflows_stop_the_run(tmp_path):
    config = tiny_config(**{"objective.kl.weight": 1e38, "train.log_every": 6, "train.max_steps": 12})
    with pytest.raises(TrainingDiverged, match=r"(overflowed|became)"):
        Trainer(config, tmp_path / "run").fit()
    assert not (tmp_path / "run" / "model").exists()


def test_a_signal_stop_and_resume_write_the_same_metrics_rows_as_a_straight_run(tmp_path, monkeypatch):
    config = tiny_config(**{**RESUME_CONFIG, "train.log_every": 4})
    Trainer(config, tmp_path / "straight").fit()
    original = ELBO.step

    def terminated_at_step_6(self, batch, info):
        if info.step == 5:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, batch, info)

    monkeypatch.setattr(ELBO, "step", terminated_at_step_6)
    with pytest.raises(TrainingStopped):
        Trainer(config, tmp_path / "stopped").fit()
    monkeypatch.setattr(ELBO, "step", original)
    train(resume=tmp_path / "stopped")

    def rows(run):  # everything but the clock
        lines = (run / "metrics.csv").read_text().splitlines()
        header = lines[0].split(",")
        timing = {header.index("elapsed_s"), header.index("images_per_s")}
        return [[v for i, v in enumerate(line.split(",")) if i not in timing] for line in lines]

    assert rows(tmp_path / "stopped") == rows(tmp_path / "straight")


def test_overwrite_never_touches_a_run_that_another_process_is_training(tmp_path):
    import socket

    from vaekit.io.run_folder import RunInUse

    run = tmp_path / "live"
    Trainer(tiny_config(**{"train.max_steps": 2}), run).fit()
    (run / ".lock").write_text(f"1 {socket.gethostname()}\n")  # pid 1 is alive: a live writer
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    with pytest.raises(RunInUse, match="process 1"):
        Trainer(tiny_config(), run, overwrite=True)
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before


def test_overwrite_removes_only_what_vaekit_wrote_and_refuses_a_folder_that_is_not_a_run(tmp_path):
    from vaekit.io.run_folder import NotARun

    mine = tmp_path / "project"
    (mine / "images").mkdir(parents=True)
    (mine / "images" / "photo.png").write_bytes(b"my photo")
    (mine / "config.yaml").write_text("my: notes\n")
    with pytest.raises(NotARun, match="did not write"):
        Trainer(tiny_config(), mine, overwrite=True)
    assert (mine / "images" / "photo.png").read_bytes() == b"my photo"
    assert (mine / "config.yaml").read_text() == "my: notes\n"

    run = tmp_path / "run"
    Trainer(tiny_config(**{"train.max_steps": 2}), run).fit()
    (run / "notes.txt").write_text("mine")
    Trainer(tiny_config(**{"train.max_steps": 3}), run, overwrite=True).fit()
    assert (run / "notes.txt").read_text() == "mine"
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step-00000003"]


def test_a_start_that_fails_leaves_no_folder_behind_to_block_the_next(tmp_path):
    with pytest.raises(Exception, match="does not exist"):
        Trainer(tiny_config(**{"data.source": str(tmp_path / "missing")}), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    Trainer(tiny_config(**{"train.max_steps": 1}), tmp_path / "run").fit()


def test_resume_and_overwrite_together_are_refused(tmp_path):
    from vaekit.config import ConfigError

    run = Trainer(tiny_config(**{"train.max_steps": 2}), tmp_path / "run").fit()
    with pytest.raises(ConfigError, match=r"--resume.*--overwrite"):
        train(resume=run, overwrite=True)


def test_extending_a_run_replaces_its_model_folder_whole_or_not_at_all(tmp_path, monkeypatch):
    import json

    import vaekit.io.card as card_module

    run = Trainer(tiny_config(**{"train.max_steps": 3}), tmp_path / "run").fit()
    (run / "model" / "attributes.safetensors").write_bytes(b"vectors")
    before = {p.name: p.read_bytes() for p in (run / "model").iterdir()}

    def crashes_after_the_weights(*args, **kwargs):
        raise OSError("killed between the weights and the model card")

    monkeypatch.setattr(card_module, "write_model_card", crashes_after_the_weights)
    with pytest.raises(OSError, match="killed"):
        train(resume=run, overrides=["train.max_steps=6"])
    assert {p.name: p.read_bytes() for p in (run / "model").iterdir()} == before
    monkeypatch.undo()
    train(resume=run, overrides=["train.max_steps=6"])
    assert json.loads((run / "model" / "vaekit.json").read_text())["steps"] == 6
    assert (run / "model" / "attributes.safetensors").read_bytes() == b"vectors"
    assert not [p for p in run.iterdir() if p.name.startswith(".model-")]


def test_what_trains_is_what_config_yaml_records(tmp_path):
    """The config is resolved once (data shape, choices, precision) and then read everywhere."""
    from vaekit.config import Config

    trainer = Trainer(
        tiny_config(**{"data.channels": None, "train.precision": "auto", "train.max_steps": 2}), tmp_path / "run"
    )
    trainer.fit()
    recorded = Config.from_yaml(tmp_path / "run" / "config.yaml")
    assert recorded == trainer.config == Config.from_yaml(tmp_path / "run" / "model" / "config.yaml")
    assert recorded.data.channels == 3 and recorded.train.precision in ("fp32", "bf16")


def test_a_sigterm_while_the_model_folder_is_written_waits_for_it_to_be_complete(tmp_path, monkeypatch):
    import json

    import vaekit.io.card as card_module

    real = card_module.write_model_card

    def terminated_while_writing(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(card_module, "write_model_card", terminated_while_writing)
    run = Trainer(tiny_config(**{"train.max_steps": 3}), tmp_path / "run").fit()  # the run had finished
    assert sorted(p.name for p in (run / "model").iterdir()) == [
        "README.md", "config.yaml", "model.safetensors", "vaekit.json"
    ]  # fmt: skip
    assert json.loads((run / "model" / "vaekit.json").read_text())["steps"] == 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


# ------------------------------------------------------------------ what the loop hands on (planted bugs, round 3)
def test_an_infinite_loss_is_caught_like_a_nan(tmp_path, monkeypatch):
    _loss_becomes(monkeypatch, float("inf"), at_step=2)
    with pytest.raises(TrainingDiverged, match="loss became inf at step 2"):
        Trainer(tiny_config(**{"train.log_every": 100}), tmp_path / "run").fit()


def test_each_step_sees_the_epochs_completed_before_it_and_the_log_the_epochs_after(tmp_path, monkeypatch):
    seen = []
    original = ELBO.step

    def records(self, batch, info):
        seen.append(info.epoch)
        return original(self, batch, info)

    monkeypatch.setattr(ELBO, "step", records)
    trainer = Trainer(tiny_config(**{"train.log_every": 1}), tmp_path / "run")
    trainer.fit()
    per_epoch = trainer.steps_per_epoch
    assert seen[:3] == [0.0, 1 / per_epoch, 2 / per_epoch] and seen[per_epoch] == 1.0
    rows = [r.split(",") for r in (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1:] if ",train," in r]
    assert [float(r[1]) for r in rows[:2]] == pytest.approx([1 / per_epoch, 2 / per_epoch], rel=1e-5)


def test_the_latent_scaling_of_the_model_folder_is_measured_on_the_training_images(tmp_path):
    import json

    from vaekit.evaluation.likelihood import latent_scaling

    trainer = Trainer(tiny_config(**{"train.max_steps": 4}), tmp_path / "run")
    trainer.fit()
    recorded = json.loads((tmp_path / "run" / "model" / "vaekit.json").read_text())["latent_scaling"]
    from vaekit.training.progress import bounded_batch

    model = load(tmp_path / "run")
    batch = bounded_batch(trainer.config.train.batch_size, trainer.config.train.final_pass_seconds)  # as the end's
    on_train = latent_scaling(model, trainer.train_set.images[:2048], batch)
    on_val = latent_scaling(model, trainer.val_set.images[:2048], batch)
    assert recorded == pytest.approx(on_train, rel=1e-6) and recorded != pytest.approx(on_val, rel=1e-6)


def test_the_model_folder_holds_the_weights_the_objective_exports(tmp_path):
    """Soft-IntroVAE with a decoder EMA: model/ holds the EMA decoder, not the raw one."""
    config = tiny_config(
        **{"objective.name": "soft-intro", "objective.intro.ema_decay": 0.9, "likelihood.name": "gaussian"},
        **{"train.max_steps": 4},
    )
    trainer = Trainer(config, tmp_path / "run")
    trainer.fit()
    with trainer.objective.export_context():
        exported = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    saved = _weights(tmp_path / "run")
    raw = trainer.model.state_dict()
    assert all(torch.equal(saved[k], exported[k]) for k in saved)
    assert any(not torch.equal(saved[k], raw[k]) for k in saved if k.startswith("decoder."))


def test_decoder_only_fine_tuning_freezes_the_encoders_batch_statistics_too(tmp_path):
    config = tiny_config(**{"model.norm": "batch", "train.max_steps": 3, "train.trainable": "decoder"})
    trainer = Trainer(config, tmp_path / "run")
    before = {k: v.clone() for k, v in trainer.model.encoder.state_dict().items()}
    trainer.fit()
    after = trainer.model.encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the encoder changed"
    assert any("running_mean" in k for k in before)


def test_data_of_another_size_than_the_config_says_is_refused(tmp_path):
    import numpy as np

    from vaekit.data import DataError, ImageDataset
    from vaekit.training.setup import describe_data

    with pytest.raises(DataError, match=r"8x8 px; data\.image_size is 16"):
        describe_data(tiny_config(), ImageDataset(np.zeros((4, 3, 8, 8), np.uint8), source="folder"))


def test_initial_weights_of_another_shape_are_a_config_error_naming_them(tmp_path):
    from vaekit.config import ConfigError

    source = Trainer(tiny_config(**{"train.max_steps": 1}), tmp_path / "small").fit()
    wider = tiny_config(**{"model.channels": [8, 32], "train.init": str(source), "train.max_steps": 1})
    with pytest.raises(ConfigError, match=r"train\.init: .* does not fit this model"):
        Trainer(wider, tmp_path / "wider")


class PoisonedDecoder(Callback):
    """Makes the decoder's output NaN (so the gradients are) at the training steps listed, or for
    the first ``times`` training forwards from ``from_step`` on."""

    def __init__(self, steps=(), from_step=None, times=0):
        self.steps, self.from_step, self.times, self.trainer = set(steps), from_step, times, None

    def on_start(self, trainer):
        self.trainer = trainer
        trainer.model.decoder.register_forward_hook(self.hook)

    def hook(self, module, inputs, output):
        step = self.trainer.step
        poison = step in self.steps or (self.from_step is not None and step >= self.from_step and self.times > 0)
        if not module.training or not poison:
            return output
        if step not in self.steps:
            self.times -= 1
        return output * float("nan")


SKIPPING = {"train.on_nonfinite": "skip", "train.checkpoint_every": 4, "train.log_every": 2}


@pytest.mark.parametrize("clip", [None, 1.0], ids=["unclipped", "clipped"])  # clipping's norm decides then
def test_updates_with_non_finite_gradients_are_skipped_and_counted(tmp_path, clip):
    config = tiny_config(**SKIPPING, **{"train.grad_clip": clip})
    trainer = Trainer(config, tmp_path / "run", callbacks=[PoisonedDecoder(steps=[2, 9])])
    run = trainer.fit()
    assert trainer.recovery.skipped_steps == [2, 9] and trainer.recovery.rollbacks == 0
    assert all(torch.isfinite(value).all() for value in _weights(run).values())
    rows = (run / "metrics.csv").read_text().lower()
    assert "nan" not in rows and "inf" not in rows


def test_by_default_a_non_finite_update_stops_the_run(tmp_path):
    config = tiny_config(**{**SKIPPING, "train.on_nonfinite": "stop"})
    with pytest.raises(TrainingDiverged, match="became nan at step 3"):
        Trainer(config, tmp_path / "run", callbacks=[PoisonedDecoder(steps=[2])]).fit()


def test_repeated_non_finite_updates_roll_back_with_half_the_learning_rate_and_go_on(tmp_path, capsys):
    config = tiny_config(**{**SKIPPING, "train.max_skipped": 3, "train.skip_window": 10})
    trainer = Trainer(config, tmp_path / "run", callbacks=[PoisonedDecoder(from_step=6, times=3)])
    run = trainer.fit()
    assert (
        trainer.recovery.rollbacks == 1
        and "rolled back to step 8 (step-00000008), learning rate x0.5" in capsys.readouterr().out
    )
    rows = [line.split(",") for line in (run / "metrics.csv").read_text().splitlines()[1:] if ",train," in line]
    steps = [int(row[0]) for row in rows]
    assert steps == sorted(set(steps)) and steps[-1] == 14  # the log matches the weights: no step twice
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    learning_rates = {int(row[0]): float(row[header.index("lr")]) for row in rows}
    assert learning_rates[4] == pytest.approx(1e-3) and learning_rates[14] == pytest.approx(5e-4)


def test_after_max_rollbacks_the_run_stops_as_diverged(tmp_path):
    config = tiny_config(**{**SKIPPING, "train.max_skipped": 2, "train.max_rollbacks": 1})
    with pytest.raises(TrainingDiverged, match=r"2 updates within 200 steps had non-finite gradients.*1 rollback"):
        Trainer(config, tmp_path / "run", callbacks=[PoisonedDecoder(from_step=5, times=100)]).fit()


def test_rollbacks_to_the_same_checkpoint_are_counted_to_the_limit(tmp_path):
    """Each rollback restores the checkpoint, whose recovery state predates it: the count must survive."""
    config = tiny_config(**{**SKIPPING, "train.max_skipped": 2, "train.max_rollbacks": 2})
    poisoned = PoisonedDecoder(from_step=5, times=60)  # enough for many rollbacks, then it would go on
    with pytest.raises(TrainingDiverged, match=r"after 2 rollback\(s\)"):
        Trainer(config, tmp_path / "run", callbacks=[poisoned]).fit()


def test_overwrite_keeps_a_users_files_inside_the_runs_folders_and_names_them(tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config(**{"train.max_steps": 2}), run).fit()
    (run / "images" / "MY_OWN_PHOTO.png").write_bytes(b"my photo")
    (run / "model" / "notes.txt").write_text("mine")
    (run / "checkpoints" / "mine").mkdir()
    (run / "checkpoints" / "mine" / "keep.txt").write_text("mine")
    with pytest.warns(UserWarning, match=r"kept 3 file\(s\) that vaekit did not write"):
        Trainer(tiny_config(**{"train.max_steps": 3}), run, overwrite=True).fit()
    assert (run / "images" / "MY_OWN_PHOTO.png").read_bytes() == b"my photo"
    assert (run / "model" / "notes.txt").read_text() == "mine"
    assert (run / "checkpoints" / "mine" / "keep.txt").read_text() == "mine"
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step-00000003"]  # the old ones went


@pytest.mark.parametrize("marker", ["", "anything\n", '{"format": "not vaekit"}'])
def test_an_empty_or_hand_made_marker_does_not_make_a_folder_a_run(tmp_path, marker):
    from vaekit.io.run_folder import NotARun

    folder = tmp_path / "fakemark"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "mine.txt").write_text("precious")
    (folder / ".vaekit-run").write_text(marker)
    with pytest.raises(NotARun, match="did not write"):
        Trainer(tiny_config(), folder, overwrite=True)
    assert (folder / "checkpoints" / "mine.txt").read_text() == "precious"


def test_a_run_of_an_earlier_version_is_still_overwritten(tmp_path):
    from vaekit.io.run_folder import ARTEFACTS

    run = tmp_path / "run"
    Trainer(tiny_config(**{"train.max_steps": 2}), run).fit()
    (run / ".vaekit-run").write_text("\n".join(ARTEFACTS) + "\n")  # what 0.2.0 wrote
    Trainer(tiny_config(**{"train.max_steps": 3}), run, overwrite=True).fit()
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step-00000003"]


def test_a_fork_that_trains_the_decoder_only_starts_a_fresh_optimizer_and_keeps_the_encoder(tmp_path):
    from safetensors.torch import load_file

    source = Trainer(tiny_config(**{"train.max_steps": 2}), tmp_path / "source").fit()
    with pytest.warns(UserWarning, match="a fresh optimizer starts"):
        fork = train(resume=source, out=tmp_path / "fork", overrides=["train.trainable=decoder", "train.max_steps=4"])
    before = load_file(source / "checkpoints" / "step-00000002" / "model.safetensors")
    after = load_file(fork / "model" / "model.safetensors")
    assert all(torch.equal(after[k], before[k]) for k in before if k.startswith("encoder."))
    assert any(not torch.equal(after[k], before[k]) for k in before if k.startswith("decoder."))


def test_a_fork_that_cannot_start_leaves_nothing_so_the_next_attempt_starts(tmp_path):
    from vaekit.config import ConfigError

    source = Trainer(tiny_config(**{"train.max_steps": 2}), tmp_path / "source").fit()
    with pytest.raises(ConfigError, match=r"train\.lr"):
        train(resume=source, out=tmp_path / "fork", overrides=["train.lr=abc"])
    assert not (tmp_path / "fork").exists()
    with pytest.raises(CheckpointError, match="does not fit"):  # a failure inside the trainer's start too
        train(resume=source, out=tmp_path / "fork", overrides=["model.latent_dim=7"])
    assert not (tmp_path / "fork").exists()
    train(resume=source, out=tmp_path / "fork", overrides=["train.max_steps=3"])


def test_the_end_of_a_run_bounds_its_held_out_and_latent_passes_in_time_and_says_so(tmp_path, capsys):
    bounded = {"train.max_steps": 2, "train.final_pass_seconds": 1e-9, "train.batch_size": 32, "data.val_fraction": 0.2}
    config = tiny_config(**bounded)
    run = Trainer(config, tmp_path / "run").fit()
    said = capsys.readouterr().out
    assert "final validation on 16 of" in said and "latent statistics over 16 of" in said  # one batch of 16 each
    assert "(train.final_pass_seconds 1e-09)" in said
    info = json.loads((run / "model" / "vaekit.json").read_text())
    assert info["latent_scaling"]["images"] == 16
    assert "measured over 16 training images" in (run / "model" / "README.md").read_text()
