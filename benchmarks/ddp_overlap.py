"""Data-parallel training with 2 CPU ranks (gloo): DDP's bucketed all-reduce, overlapped with
backward, against the flat all-reduce after backward, on the kl-f8-celeba64 recipe.

    python benchmarks/ddp_overlap.py [--steps 8] [--profile 4] [--batch 16] [--bucket-mb 4]
                                     [--out benchmarks/results/ddp]

For each of ``flat`` and ``ddp``: ``torchrun --nproc_per_node 2`` trains STEPS updates from the same
start on the same images (one torch thread per rank); rank 0 profiles the last PROFILE updates with
``torch.profiler`` (a Chrome trace per mode in OUT) and reports the median step time, the time
spent in ``gloo:all_reduce`` and the share of it that ran while backward was still computing
(overlap). One process then trains the same updates on the whole batch, and the final weights of
each 2-rank run are compared with it. The images are the built-in shapes at 64 px (the
communication pattern does not depend on the data); LPIPS has random weights (none can be
downloaded here).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _config(batch: int, steps: int, sync: str, bucket_mb: float):
    from vaekit.config import load_preset

    return load_preset("kl-f8-celeba64").with_overrides(
        {
            "data.source": "shapes",
            "data.num_images": 512,
            "data.crop": "none",
            "likelihood.perceptual.random_weights": True,
            "train.batch_size": batch,
            "train.max_steps": steps,
            "train.gradient_sync": sync,
            "train.ddp_bucket_mb": bucket_mb,
            "train.threads": 1,
            "train.log_every": 1000,
            "train.checkpoint_every": 10000,
        }
    )


def _union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def overlap_summary(events) -> dict:
    """Communication time, and the part of it inside backward's computation (union of the autograd
    engine's node evaluations, the hooks that launch buckets excluded)."""
    backward = _union(
        [
            (e.time_range.start, e.time_range.end)
            for e in events
            if e.name.startswith("autograd::engine::evaluate_function") and "AccumulateGrad" not in e.name
        ]
    )
    comm = [(e.time_range.start, e.time_range.end) for e in events if e.name == "gloo:all_reduce"]
    total = sum(b - a for a, b in comm)
    inside = sum(max(0.0, min(b, d) - max(a, c)) for a, b in comm for c, d in backward)
    return {
        "all_reduce_ms": total / 1e3,
        "all_reduce_calls": len(comm),
        "overlapped_ms": inside / 1e3,
        "overlap_fraction": inside / total if total else 0.0,
    }


def rank_worker(sync: str, out: Path, batch: int, steps: int, profile: int, bucket_mb: float) -> None:
    """Under torchrun: train, profile the last updates on rank 0, write weights and the summary."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as profiler

    from vaekit.training.callbacks import Callback
    from vaekit.training.trainer import Trainer

    rank = int(os.environ["RANK"])

    class Timer(Callback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.prof = profiler(activities=[ProfilerActivity.CPU]) if rank == 0 else None

        def on_step(self, trainer, step, metrics) -> None:
            self.times.append(time.perf_counter())
            if step == steps - profile and self.prof is not None:
                self.prof.start()

    timer = Timer()
    trainer = Trainer(_config(batch, steps, sync, bucket_mb), out / sync, overwrite=True, callbacks=[timer])
    trainer.fit()
    if rank != 0:
        return
    prof = timer.prof
    prof.stop()
    prof.export_chrome_trace(str(out / f"trace-{sync}.json"))
    steps_s = [b - a for a, b in zip(timer.times[-profile - 1 :], timer.times[-profile:], strict=False)]
    summary = {"sync": trainer.gradient_sync, "step_s": statistics.median(steps_s), **overlap_summary(prof.events())}
    (out / f"summary-{sync}.json").write_text(json.dumps(summary))


def single_process(out: Path, batch: int, steps: int, bucket_mb: float) -> None:
    from vaekit.training.trainer import Trainer

    config = _config(batch, steps, "auto", bucket_mb).with_overrides({"train.threads": 2})
    Trainer(config, out / "single", overwrite=True).fit()


def _max_difference(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    x, y = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    return max((x[k].float() - y[k].float()).abs().max().item() for k in x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--profile", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--bucket-mb", type=float, default=4.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ddp")
    parser.add_argument("--rank-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank_worker:
        rank_worker(args.rank_worker, args.out, args.batch, args.steps, args.profile, args.bucket_mb)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    results = {}
    for sync in ("flat", "ddp"):
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", __file__]
        options = ["--steps", str(args.steps), "--profile", str(args.profile), "--batch", str(args.batch)]
        options += ["--bucket-mb", str(args.bucket_mb), "--out", str(args.out), "--rank-worker", sync]
        subprocess.run([*command, *options], env=env, check=True)
        results[sync] = json.loads((args.out / f"summary-{sync}.json").read_text())
    single_process(args.out, args.batch, args.steps, args.bucket_mb)
    for sync in results:
        results[sync]["max_weight_difference_vs_1_process"] = _max_difference(
            args.out / sync / "model", args.out / "single" / "model"
        )
    results["ddp_vs_flat_step_time"] = results["ddp"]["step_s"] / results["flat"]["step_s"]
    results["settings"] = vars(args) | {"out": str(args.out), "torch": torch.__version__}
    (args.out / "summary.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
