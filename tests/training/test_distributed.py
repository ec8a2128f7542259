"""Data-parallel training: 2 processes under torchrun (gloo, CPU) do what 1 process does."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import tiny_config
from vaekit.training.trainer import Trainer

WORKER = Path(__file__).with_name("ddp_worker.py")
ROOT = Path(__file__).resolve().parents[2]
# Per-image noise (dynamic binarisation, posterior samples) and flips must follow the image,
# whichever process draws it; no BatchNorm (its statistics are per process, as in any DDP setup).
CONFIG = {
    "likelihood.name": "bernoulli",
    "likelihood.binarize": "dynamic",
    "data.flip": True,
    "train.batch_size": 32,
    "train.max_steps": 6,
    "train.grad_clip": 1.0,
}


def _torchrun(config, out: Path, *extra: str) -> None:
    config_file = out.with_suffix(".yaml")
    config.to_yaml(config_file)
    # the checkout under test first (src/), whatever vaekit is installed; tests/ importable from ROOT
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    done = subprocess.run(
        [*command, str(WORKER), str(config_file), str(out), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def _rank_weights(out: Path, rank: int) -> dict[str, torch.Tensor]:
    return load_file(str(out / f"rank-{rank}" / "model.safetensors"))


def _assert_close(a, b):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)


def _ranks_agree(out: Path) -> bool:
    rank0, rank1 = _rank_weights(out, 0), _rank_weights(out, 1)
    return rank0.keys() == rank1.keys() and all(torch.equal(rank0[key], rank1[key]) for key in rank0)


def _gradient_sync(out: Path) -> str:
    return (out / "rank-0" / "gradient_sync").read_text()


@pytest.mark.parametrize(
    ("sync", "accumulate"),
    [pytest.param("flat", 1, marks=pytest.mark.slow), ("ddp", 1), pytest.param("ddp", 2, marks=pytest.mark.slow)],
    ids=["flat-all-reduce", "ddp-buckets", "ddp-buckets-no-sync-micro-batches"],
)
def test_two_processes_end_with_identical_weights_that_match_one_process_with_the_same_batch(
    tmp_path, sync, accumulate
):
    settings = {**CONFIG, "train.gradient_sync": sync, "train.accumulate": accumulate, "train.ddp_bucket_mb": 0.01}
    _torchrun(tiny_config(**settings), tmp_path / "ddp")
    assert _gradient_sync(tmp_path / "ddp") == sync
    rank0, rank1 = _rank_weights(tmp_path / "ddp", 0), _rank_weights(tmp_path / "ddp", 1)
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    single = Trainer(tiny_config(**CONFIG), tmp_path / "single")
    single.fit()
    _assert_close(rank0, {k: v for k, v in single.model.state_dict().items()})
    # rank 0 alone wrote the run: its model is the ranks' model
    _assert_close(load_file(str(tmp_path / "ddp" / "model" / "model.safetensors")), rank0)
    assert not list((tmp_path / "ddp").glob("rank-*/checkpoints"))


@pytest.mark.slow  # two torchrun jobs, about 10 s: `make test-all` runs it
def test_auto_uses_ddp_for_one_backward_per_update_and_the_flat_average_for_phased_objectives(tmp_path):
    _torchrun(tiny_config(**{**CONFIG, "train.max_steps": 2}), tmp_path / "elbo")
    assert _gradient_sync(tmp_path / "elbo") == "ddp"
    intro = {**CONFIG, "train.max_steps": 2, "objective.name": "soft-intro", "likelihood.name": "gaussian"}
    intro.pop("likelihood.binarize")
    _torchrun(tiny_config(**intro), tmp_path / "intro")
    assert _gradient_sync(tmp_path / "intro") == "flat"
    assert _ranks_agree(tmp_path / "intro")


@pytest.mark.slow
def test_ddp_with_the_adversarial_term_keeps_the_model_equal_on_every_rank(tmp_path):
    adversarial = {
        **CONFIG,
        "train.max_steps": 3,
        "objective.adversarial.enabled": True,
        "objective.adversarial.channels": 8,
        "objective.adversarial.layers": 2,
        "data.image_size": 32,
    }
    _torchrun(tiny_config(**adversarial), tmp_path / "gan")
    assert _gradient_sync(tmp_path / "gan") == "ddp"
    assert _ranks_agree(tmp_path / "gan")


@pytest.mark.slow
def test_a_two_process_run_resumes_under_torchrun_to_the_same_weights(tmp_path):
    _torchrun(tiny_config(**CONFIG), tmp_path / "straight")
    _torchrun(tiny_config(**{**CONFIG, "train.max_steps": 3}), tmp_path / "resumed")
    for rank in (0, 1):
        shutil.rmtree(tmp_path / "resumed" / f"rank-{rank}")  # the worker writes it again after the resume
    _torchrun(tiny_config(**CONFIG), tmp_path / "resumed", "--resume")
    _assert_close(_rank_weights(tmp_path / "resumed", 0), _rank_weights(tmp_path / "straight", 0))


def test_accumulating_two_micro_batches_makes_the_update_of_the_whole_batch(tmp_path):
    whole = Trainer(tiny_config(**CONFIG), tmp_path / "whole")
    whole.fit()
    halves = Trainer(tiny_config(**CONFIG, **{"train.accumulate": 2}), tmp_path / "halves")
    halves.fit()
    _assert_close(halves.model.state_dict(), whole.model.state_dict())


def test_accumulation_is_refused_for_objectives_that_update_in_phases(tmp_path):
    config = tiny_config(**{"objective.name": "soft-intro", "train.accumulate": 2})
    with pytest.raises(ValueError, match="accumulate"):
        Trainer(config, tmp_path / "run")


def test_a_batch_that_does_not_split_into_micro_batches_is_refused(tmp_path):
    with pytest.raises(ValueError, match="split evenly"):
        Trainer(tiny_config(**{"train.batch_size": 30, "train.accumulate": 4}), tmp_path / "run")


@pytest.mark.slow  # 6 s: two processes; `make test` keeps the DDP weights test
def test_gradients_and_logged_metrics_are_averaged_over_ranks_not_summed(tmp_path):
    import torch.multiprocessing as mp

    from tests.training.ddp_worker import check_reductions

    mp.spawn(check_reductions, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    for rank in (0, 1):
        result = torch.load(tmp_path / f"rank-{rank}.pt", weights_only=True)
        assert torch.equal(result["weight"], torch.full((3,), 1.5))
        assert torch.equal(result["bias"], torch.full((1,), 1.5, dtype=torch.float64))
        assert torch.equal(result["metrics"], torch.tensor([0.5, 5.0]))


def test_ranks_agree_to_stop_one_step_after_the_first_wish_and_on_the_same_reason(tmp_path):
    import json

    import torch.multiprocessing as mp

    from tests.training.ddp_worker import check_stop_votes

    mp.spawn(check_stop_votes, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    votes = [json.loads((tmp_path / f"votes-{rank}.json").read_text()) for rank in (0, 1)]
    waiting = [None] * 4
    assert votes[1]["signal"][:5] == [*waiting, "SIGTERM"]  # rank 1 asked at step 3: all stop at step 4
    assert votes[0]["signal"][:5] == [*waiting, "another process stopping"]  # an interruption on both
    for rank in (0, 1):  # a time budget alone, reached at steps 2 and 4: stopped at 3 as a time budget
        assert votes[rank]["budgets"][:4] == [None, None, None, "time budget"]


@pytest.mark.slow  # 4 s: it waits past a timeout on purpose
def test_ranks_wait_for_a_slow_rank_beyond_the_training_groups_timeout(tmp_path):
    import torch.multiprocessing as mp

    from tests.training.ddp_worker import check_patient_wait

    mp.spawn(check_patient_wait, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    assert float((tmp_path / "waited-0").read_text()) > 1.0  # twice the training group's 0.5 s, and no error


def test_asking_for_ddp_with_an_objective_that_updates_in_phases_is_a_config_error():
    from vaekit.config import ConfigError
    from vaekit.engine.distributed import Ranks, gradient_sync

    two, one = Ranks(0, 2), Ranks()
    with pytest.raises(ConfigError, match=r"train\.gradient_sync: ddp"):
        gradient_sync(two, "ddp", False, "soft-intro")
    assert gradient_sync(two, "auto", False, "soft-intro") == "flat"
    assert gradient_sync(two, "auto", True, "elbo") == "ddp"
    assert gradient_sync(two, "flat", True, "elbo") == "flat"
    assert gradient_sync(one, "ddp", True, "elbo") is None  # one process: nothing to average


@pytest.mark.slow  # a torchrun job, about 15 s alone: `make test-all` runs it
def test_a_shard_run_of_one_process_resumes_on_two_with_the_rest_of_the_epoch(tmp_path):
    from PIL import Image

    from vaekit.data.shards import iter_folder, write_shards

    photos = tmp_path / "photos"
    photos.mkdir()
    generator = torch.Generator().manual_seed(0)
    for i in range(96):
        pixels = (torch.rand(20, 20, 3, generator=generator) * 255).byte().numpy()
        Image.fromarray(pixels).save(photos / f"{i:03d}.png")
    write_shards(iter_folder(photos), tmp_path / "shards", per_shard=24)
    config = tiny_config(**{**CONFIG, "data.source": str(tmp_path / "shards"), "train.max_steps": 4})
    straight = Trainer(config, tmp_path / "straight")
    straight.fit()
    Trainer(config.with_overrides({"train.max_steps": 2}), tmp_path / "resumed").fit()  # one process, 2 steps
    _torchrun(config, tmp_path / "resumed", "--resume")  # two processes, steps 3 and 4: the same batches, halved
    _assert_close(_rank_weights(tmp_path / "resumed", 0), dict(straight.model.state_dict()))
