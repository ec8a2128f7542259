"""The benchmark scripts' command lines (their numbers live in BENCHMARKS.md, not in tests)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUALITY = ROOT / "benchmarks" / "quality.py"
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}


def test_the_quality_script_lists_its_four_suites():
    done = subprocess.run([sys.executable, str(QUALITY), "--help"], env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for suite in ("toy2d", "intro-mnist", "style-celeba", "as-intro-paintings"):
        assert suite in done.stdout


@pytest.mark.slow
def test_a_short_toy2d_run_writes_the_three_metrics_for_both_methods(tmp_path):
    out = tmp_path / "toy2d.json"
    command = [sys.executable, str(QUALITY), "toy2d", "--dataset", "8gaussians", "--iterations", "30"]
    command += ["--seeds", "0", "--threads", "1", "--out", str(tmp_path), "--json", str(out)]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    methods = {(run["method"], run["implementation"]) for run in report["runs"]}
    assert methods == {("vae", "vaekit"), ("soft-intro", "vaekit")}
    for run in report["runs"]:
        assert run["steps"] == 30
        assert all(run[metric] > 0 for metric in ("gnelbo", "kl", "jsd"))
    assert Path(report["images"][0]).exists()


def test_the_time_to_quality_table_keeps_the_latest_run_of_each_system(tmp_path):
    row = {"dataset": "mnist", "minutes": 2, "steps": 10, "reconstruction.psnr": 20.0, "reconstruction.ssim": 0.8}
    first = [{**row, "system": "default", "nll.nll": 99.0}, {**row, "system": "old"}]
    rerun = [{**row, "system": "default", "nll.nll": 91.5, "reconstruction.psnr": 21.0}]
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
