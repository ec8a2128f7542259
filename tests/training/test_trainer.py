import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import tiny_config
from vaekit.api import load, train
from vaekit.objectives.elbo import ELBO
from vaekit.training.checkpoint import CheckpointError, list_checkpoints
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
    original = ELBO.step

    def diverges_at_step_6(self, batch, info):
        scalars = original(self, batch, info)
        if info.step == 5:
            scalars["loss"] = torch.tensor(float("nan"))
        return scalars

    monkeypatch.setattr(ELBO, "step", diverges_at_step_6)
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
    with pytest.raises(FileExistsError, match="already holds a run"):
        Trainer(tiny_config(), tmp_path / "run")


def test_time_budget_stops_cleanly_and_writes_the_model(tmp_path):
    run = Trainer(tiny_config(**{"train.max_time": 0.0, "train.epochs": 100}), tmp_path / "run").fit()
    assert (run / "model" / "model.safetensors").is_file()
    assert list_checkpoints(run / "checkpoints")[-1].name == "step-00000001"


def test_bf16_autocast_trains_on_cpu(tmp_path):
    run = Trainer(tiny_config(**{"train.precision": "bf16", "train.max_steps": 4}), tmp_path / "run").fit()
    losses = [float(r.split(",")[6]) for r in (run / "metrics.csv").read_text().splitlines()[1:] if ",train," in r]
    assert all(torch.isfinite(torch.tensor(losses)))


def test_fp16_without_cuda_is_refused(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA present: fp16 is allowed")
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        Trainer(tiny_config(**{"train.precision": "fp16"}), tmp_path / "run")
