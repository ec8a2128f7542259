"""Training under a wall-clock budget and scoring on held-out data, shared by the benchmark scripts
that compare systems at equal time (``quality.py``, ``time_to_quality.py``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import vaekit


def train_for(
    preset: str | None, data: str, out: Path, seconds: float, overrides: list[str], resume: bool = False, **options
) -> dict:
    """Train (or continue) ``preset`` (``None``: vaekit's choices from the data; an explicit
    ``config=`` in ``options``) until ``seconds`` of training in total; steps and time."""
    started = time.perf_counter()
    budget = [f"train.max_time={seconds}", *overrides]
    if resume:
        vaekit.train(resume=out, overrides=budget)
    else:
        vaekit.train(preset=preset, data=data, out=out, overwrite=True, overrides=budget, **options)
    info = json.loads((out / "model" / "vaekit.json").read_text())
    return {"wall_s": time.perf_counter() - started, "steps": info.get("steps"), "train_s": seconds}


def scores(
    run: Path, data: str, features: Path | None, metrics: list[str], max_images: int | None = None, split: str = "test"
) -> dict:
    """``vaekit.evaluate`` of ``run`` on ``split`` (the first ``max_images``), flattened."""
    settings: dict = {"features": str(features)} if features else {}
    if max_images is not None:
        settings["max_images"] = max_images
    settings |= {"split": split, "metrics": metrics, "output": run / "evaluation", "n_samples": 2000}
    settings["sampler"] = "prior"  # as every system compared samples, and as the recorded rows did
    report = vaekit.evaluate(run, data, **settings)
    flat: dict[str, float] = {}
    for group, values in report["metrics"].items():
        if isinstance(values, dict):
            flat |= {f"{group}.{k}": v for k, v in values.items() if isinstance(v, int | float)}
    return flat


def step_flops(preset: str | None, data: str, out: Path, overrides: list[str]) -> float:
    """Floating-point operations of one training step of ``preset`` (torch's count of its matrix
    products and convolutions): a 2-step run minus a 1-step run, so set-up and end-of-run work cancel
    (the sampler fitted at the end, bounded by time and not by work, is left out)."""
    from torch.utils.flop_counter import FlopCounterMode

    counts = []
    for steps in (1, 2):  # fp32: the count does not depend on precision, and "auto" would time a probe
        settings = [*overrides, f"train.max_steps={steps}", "train.precision=fp32", "train.fit_sampler=false"]
        with FlopCounterMode(display=False) as counter:
            vaekit.train(preset=preset, data=data, out=out, overwrite=True, overrides=settings)
        counts.append(counter.get_total_flops())
    return float(counts[1] - counts[0])
