"""The benchmark scripts' command lines (their numbers live in BENCHMARKS.md, not in tests)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUALITY = ROOT / "benchmarks" / "quality.py"
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    "OMP_NUM_THREADS": "1",
    "TQDM_DISABLE": "1",
}
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_the_quality_script_lists_its_four_suites():
    done = subprocess.run([sys.executable, str(QUALITY), "--help"], env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for suite in ("toy2d", "intro-mnist", "style-celeba", "as-intro-paintings"):
        assert suite in done.stdout


@pytest.mark.slow
def test_a_short_toy2d_run_in_two_processes_writes_the_three_metrics_for_both_methods(tmp_path):
    out = tmp_path / "toy2d.json"
    command = [sys.executable, str(QUALITY), "toy2d", "--dataset", "8gaussians", "--iterations", "30"]
    command += ["--seeds", "0", "--threads", "1", "--jobs", "2", "--out", str(tmp_path), "--json", str(out)]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    methods = {(run["method"], run["implementation"]) for run in report["runs"]}
    assert methods == {("vae", "vaekit"), ("soft-intro", "vaekit")}
    for run in report["runs"]:
        assert run["steps"] == 30
        assert all(run[metric] > 0 for metric in ("gnelbo", "kl", "jsd"))
    assert Path(report["images"][0]).exists()


def test_an_image_suite_names_its_systems_when_asked_for_one_it_does_not_have(tmp_path):
    (tmp_path / "bob-ross-paintings").mkdir()
    command = [sys.executable, str(QUALITY), "as-intro-paintings", "--systems", "gan", "--data", str(tmp_path)]
    done = subprocess.run([*command, "--out", str(tmp_path)], env=ENV, capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == "--systems gan: as-intro-paintings has as-intro, elbo"


def test_the_flops_of_a_training_step_are_counted_once_and_grow_with_the_batch(tmp_path):
    from budget import step_flops

    tiny = ["data.num_images=64", "data.image_size=16", "model.channels=[8, 16]", "train.threads=1"]
    flops = {
        b: step_flops("shapes-demo", "shapes", tmp_path / f"{b}", [*tiny, f"train.batch_size={b}"]) for b in (4, 8)
    }
    assert flops[4] > 0
    assert flops[8] == pytest.approx(2 * flops[4], rel=1e-3)  # set-up, checkpoints and samples cancel out


def test_the_time_to_quality_table_keeps_the_latest_run_of_each_system(tmp_path):
    row = {"dataset": "mnist", "minutes": 2, "steps": 10, "reconstruction.psnr": 20.0, "reconstruction.ssim": 0.8}
    first = [{**row, "system": "default", "nll.iwae_nll": 99.0}, {**row, "system": "old"}]
    rerun = [{**row, "system": "default", "nll.iwae_nll": 91.5, "reconstruction.psnr": 21.0}]
    files = []
    for name, results in (("first", first), ("rerun", rerun)):
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps({"results": results}))
    command = [sys.executable, str(ROOT / "benchmarks" / "time_to_quality.py"), "--table", *map(str, files)]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| mnist")]
    assert rows == [
        "| mnist | default | 21.00 dB / 0.800 / 91.5 (10 steps) |",
        "| mnist | old | 20.00 dB / 0.800 (10 steps) |",
    ]


@pytest.mark.parametrize("iterations", [2000, 6000, 30000])
def test_the_toy2d_learning_rate_falls_on_the_official_scripts_iterations(iterations):
    """The official 2-D script divides its learning rate by 10 at iterations 10,000 and 15,000,
    however long the run (MultiStepLR stepped every iteration)."""
    from quality import toy2d_overrides, toy2d_steps_per_epoch

    from vaekit.config import Config
    from vaekit.engine.lr_schedule import lr_factor

    steps_per_epoch = toy2d_steps_per_epoch(iterations)
    train = Config().with_overrides(toy2d_overrides("8gaussians", "soft-intro", iterations, 0)).train
    official = [0.1 ** ((step >= 10_000) + (step >= 15_000)) for step in range(iterations)]
    assert [lr_factor(train, step, steps_per_epoch) for step in range(iterations)] == pytest.approx(official)


def test_toy2d_trains_on_new_points_every_epoch_as_the_official_script_does(tmp_path):
    """The official script draws a fresh batch every iteration: no point may be trained on twice."""
    from quality import TOY2D_EPOCHS, train_toy2d_vaekit

    from vaekit.training.callbacks import Callback

    epochs: list = []

    class Watch(Callback):  # runs after the suite's own callbacks: sees each epoch's new points
        def on_start(self, trainer):
            epochs.append(trainer.loader.images.copy())

        def on_validation(self, trainer, epoch, metrics, images):
            epochs.append(trainer.loader.images.copy())

    train_toy2d_vaekit("8gaussians", "vae", 60, 0, tmp_path / "run", callbacks=[Watch()])
    assert len(epochs) == TOY2D_EPOCHS + 1
    rows = {tuple(row) for points in epochs for row in points.tolist()}
    assert len(rows) == sum(len(points) for points in epochs)  # no point twice


def test_the_gpu_check_says_in_one_line_that_there_is_no_gpu_and_exits_0():
    if __import__("torch").cuda.is_available():
        pytest.skip("a GPU is present: make gpu-check runs the real check")
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py")], env=ENV, capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.strip().count("\n") == 0 and "no CUDA device" in done.stdout


# ---------------------------------------------------------------- every script, at tiny settings
def test_every_name_a_benchmark_imports_from_vaekit_exists():
    """An API change that a script still names (ldm.py's ``update``) fails here, not on the day of
    the measurement; the smoke runs below then run each script at tiny settings."""
    import ast
    import importlib

    missing = []
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vaekit"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    if (
                        not hasattr(module, alias.name)
                        and importlib.util.find_spec(f"{node.module}.{alias.name}") is None
                    ):
                        missing.append(f"{script.name}:{node.lineno} {node.module}.{alias.name}")
    assert not missing


def _smoke(tmp_path, *arguments: str, timeout: int = 300) -> str:
    command = [sys.executable, str(ROOT / "benchmarks" / arguments[0]), *arguments[1:]]
    done = subprocess.run(command, env=ENV, cwd=tmp_path, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _last_json(text: str) -> dict:
    return json.loads(text[text.rindex("\n{") + 1 :] if "\n{" in text else text)


def _tiny_run(tmp_path, preset: str = "shapes-demo", data: str = "shapes") -> Path:
    import vaekit

    overrides = ["train.max_steps=2", "data.num_images=64", "train.threads=1"]
    return vaekit.train(preset=preset, data=data, out=tmp_path / "run", overrides=overrides)


def test_shard_index_smoke(tmp_path):
    result = _last_json(_smoke(tmp_path, "shard_index.py", "--shards", "2", "--per-shard", "4", "--samples", "2"))
    assert result["samples"] == 8 and result["http_bytes_per_sample"] > 0


@pytest.mark.slow  # 4-6 s: make test-all runs it (the static import check stays in make test)
def test_start_names_smoke(tmp_path):
    assert "start + split:" in _smoke(tmp_path, "start_names.py", "--images", "1000")


@pytest.mark.slow  # 4-6 s: make test-all runs it (the static import check stays in make test)
def test_save_guard_smoke(tmp_path):
    result = _last_json(
        _smoke(tmp_path, "save_guard.py", "--preset", "shapes-demo", "--repeats", "1", "--threads", "1")
    )
    assert result["save_checkpoint_s"] > 0 and result["check_s"] >= 0


@pytest.mark.slow  # 4-6 s: make test-all runs it (the static import check stays in make test)
def test_loader_share_smoke(tmp_path):
    arguments = ["--size", "16", "--images", "8", "--photo", "32", "--batch", "2", "--steps", "2", "--workers", "1"]
    result = _last_json(_smoke(tmp_path, "loader_share.py", *arguments, "--processes", "1"))
    assert 0 <= result["loader_share"] <= 1


@pytest.mark.slow  # 4-6 s: make test-all runs it (the static import check stays in make test)
def test_train_and_evaluate_smoke(tmp_path):
    arguments = ["--preset", "shapes-demo", "--data", "shapes", "--out", str(tmp_path / "run")]
    _smoke(tmp_path, "train_and_evaluate.py", *arguments, "--set", "train.max_steps=2", "data.num_images=64")
    assert (tmp_path / "run" / "model").is_dir()


@pytest.mark.slow  # 4-6 s: make test-all runs it (the static import check stays in make test)
def test_explorer_latency_smoke(tmp_path):
    run = _tiny_run(tmp_path)
    assert "during uploads" in _smoke(tmp_path, "explorer_latency.py", str(run), "--uploads", "1", "--probes", "2")


@pytest.mark.slow
def test_speed_comparison_with_pythae_smoke(tmp_path):
    pytest.importorskip("pythae", reason="pythae is the bench extra: make bench-setup")
    from tests.helpers import shared_data

    shared_data("mnist")
    out = _smoke(tmp_path, "speed.py", "--only", "compare", "--steps", "2", "--repeats", "1", "--threads", "1")
    assert "| pythae fp32 |" in out and "| vaekit fp32 |" in out


@pytest.mark.slow
def test_ldm_speed_smoke(tmp_path):
    pytest.importorskip("diffusers")
    out = _smoke(tmp_path, "ldm.py", "speed", "--size", "16", "--batch", "1", "--steps", "1", "--repeats", "1")
    assert "ratio vaekit/diffusers" in out


@pytest.mark.slow
def test_startup_memory_smoke(tmp_path):
    arguments = ["--sizes", "100", "200", "--image-size", "8", "--cache", str(tmp_path / "cache")]
    assert _last_json(_smoke(tmp_path, "startup_memory.py", *arguments))["images"] == 200


@pytest.mark.slow
def test_ex_post_sampling_smoke(tmp_path):
    arguments = ["--preset", "shapes-demo", "--data", "shapes", "--out", str(tmp_path / "out"), "--minutes", "0.02"]
    assert "iwae" in _smoke(
        tmp_path, "ex_post_sampling.py", *arguments, "--samples", "16", "--images", "16", "--k", "2"
    )


@pytest.mark.slow
def test_quantizers_smoke(tmp_path):
    pytest.importorskip("vector_quantize_pytorch")
    from tests.helpers import shared_data

    celeba = shared_data("celeba-subset")
    output = _smoke(tmp_path, "quantizers.py", "--data", str(celeba), "--out", str(tmp_path / "q"), "--tiny")
    assert "| vq-ema-kmeans-restarts | 2 |" in output and (tmp_path / "q" / "quantizers.json").is_file()


@pytest.mark.slow
def test_ddp_overlap_smoke(tmp_path):
    arguments = ["--steps", "3", "--profile", "1", "--batch", "2", "--out", str(tmp_path / "ddp")]
    _smoke(tmp_path, "ddp_overlap.py", *arguments, timeout=600)
    assert (tmp_path / "ddp" / "summary.json").is_file()


@pytest.mark.slow
def test_distill_smoke(tmp_path):
    pytest.importorskip("diffusers")
    from tests.helpers import shared_data

    celeba = shared_data("celeba-subset")
    output = _smoke(tmp_path, "distill.py", "--data", str(celeba), "--out", str(tmp_path / "d"), "--tiny")
    assert "| distilled |" in output and "| scratch |" in output and (tmp_path / "d" / "distill.json").is_file()


@pytest.mark.slow
def test_diffusers_classes_smoke(tmp_path):
    pytest.importorskip("diffusers")
    from tests.helpers import shared_data

    celeba = shared_data("celeba-subset")
    output = _smoke(tmp_path, "diffusers_classes.py", "--data", str(celeba), "--out", str(tmp_path / "c"), "--tiny")
    assert output.count("| True | True | 0 |") == 5  # every class: exact resume, encoder kept, decode equal
