"""The GPU check: one command, well under 8 minutes on one GPU, run whenever a GPU is lent.

    make gpu-check            # or: python benchmarks/gpu_check.py [--out DIR] [--skip-tests]

1. the GPU-marked tests (every architecture x fp32 / bf16 / fp16 on CUDA, fp16 with its scaler,
   exact resume on CUDA);
2. kl-f8-sd (diffusers' AutoencoderKL, 83.7 M parameters) at 256 px, bf16: vaekit's update against
   diffusers' own training step (train_vae example: encode, sample, decode, L1 + KL, AdamW) in one
   process, interleaved: images/s, achieved TFLOP/s (FLOPs counted by torch's FlopCounterMode over
   one step) and the fraction of the device's dense bf16 peak;
3. conv-celeba64 images/s; 4. the loader's share of a step (batches gathered from the cache), and
of a kl-f8-sd step with its batches decoded while training from JPEG shards (random crops; a
prefetch thread, then 2 loader worker processes).
Writes DIR/gpu-check.json and DIR/gpu-check.md (the BENCHMARKS.md rows). Without CUDA it says so
in one line and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import torch
from ldm import SD  # the kl-f8-sd settings of the CPU comparison, benchmarks/ldm.py

ROOT = Path(__file__).resolve().parents[1]
# dense bf16 tensor-core peaks (TFLOP/s) of common data-centre GPUs, from their vendors' sheets
PEAK_BF16 = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0}


def peak_tflops(name: str) -> float | None:
    return next((peak for key, peak in PEAK_BF16.items() if key in name), None)


def timed(step, batch: int, steps: int) -> dict:
    step()  # warm-up (cuDNN autotuning, allocator)
    torch.cuda.synchronize()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return {"images_per_s": batch * steps / sum(times), "step_s": statistics.median(times)}


def flops_of(step) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    torch.cuda.synchronize()
    return float(counter.get_total_flops())


def vaekit_step(size: int, batch: int, device: str = "cuda"):
    from vaekit import noise
    from vaekit.config import Config
    from vaekit.engine.precision import Precision
    from vaekit.engine.step import StepInfo, update
    from vaekit.models import create_model
    from vaekit.objectives import create_objective

    config = Config().with_overrides({**SD, "data.image_size": size, "data.channels": 3, "train.batch_size": batch})
    device = torch.device(device)
    model = create_model(config).to(device).train()
    precision = Precision("bf16", device)
    objective = create_objective(model, config, precision)
    fixed = torch.rand(batch, 3, size, size, device=device)
    counter = iter(range(10**9))

    def step(images: torch.Tensor | None = None) -> None:
        i = next(counter)
        update(objective, precision, fixed if images is None else images, StepInfo(i, 0.0, 100, batch),
               noise.step_seed(0, i))  # fmt: skip

    return step


def diffusers_step(size: int, batch: int):
    from diffusers import AutoencoderKL

    from vaekit.models.autoencoder_kl import AutoencoderKLConfig, diffusers_config

    options = AutoencoderKLConfig(block_out_channels=[128, 256, 512, 512], layers_per_block=2)
    vae = AutoencoderKL(**diffusers_config(options, (3, size, size))).cuda().train()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=1e-4)
    images = torch.rand(batch, 3, size, size, device="cuda") * 2 - 1

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            posterior = vae.encode(images).latent_dist
            pred = vae.decode(posterior.sample()).sample
        loss = torch.nn.functional.l1_loss(pred.float(), images) + 1e-6 * posterior.kl().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def conv_celeba_step(batch: int):
    from vaekit import noise
    from vaekit.config import load_preset
    from vaekit.engine.precision import Precision
    from vaekit.engine.step import StepInfo, update
    from vaekit.models import create_model
    from vaekit.objectives import create_objective

    config = load_preset("conv-celeba64").with_overrides({"train.batch_size": batch})
    device = torch.device("cuda")
    model = create_model(config).to(device).train()
    precision = Precision("bf16", device)
    objective = create_objective(model, config, precision)
    images = torch.rand(batch, 3, 64, 64, device=device)
    counter = iter(range(10**9))

    def step() -> None:
        i = next(counter)
        update(objective, precision, images, StepInfo(i, 0.0, 100, batch), noise.step_seed(0, i))

    return step


def loader_share(batch: int, steps: int) -> dict:
    """Seconds gathering batches from a uint8 cache (host -> device) against the whole step."""
    import numpy as np

    from vaekit.data.loader import BatchLoader

    step = conv_celeba_step(batch)
    images = np.random.default_rng(0).integers(0, 256, (batch * (steps + 1), 3, 64, 64), dtype=np.uint8)
    loader = iter(BatchLoader(images, batch, shuffle=True, device=torch.device("cuda")))
    step()
    torch.cuda.synchronize()
    load_s = total_s = 0.0
    for _ in range(steps):
        start = time.perf_counter()
        next(loader)
        torch.cuda.synchronize()
        loaded = time.perf_counter()
        step()
        torch.cuda.synchronize()
        load_s += loaded - start
        total_s += time.perf_counter() - start
    return {"loader_share": load_s / total_s, "step_s": total_s / steps}


def shard_loader_share(size: int, batch: int, steps: int, processes: int, device: str = "cuda") -> dict:
    """The kl-f8-sd step's wait for its next batch when the batches are decoded while training from
    tar shards of 768 px JPEGs (a prefetch thread, or ``processes`` loader worker processes)."""
    import tempfile

    from loader_share import photos  # benchmarks/loader_share.py: the CPU measurement's photos

    from vaekit.data.loader import BatchLoader
    from vaekit.data.shards import iter_folder, load_shards, write_shards

    with tempfile.TemporaryDirectory() as scratch:
        folder, shards = Path(scratch, "photos"), Path(scratch, "shards")
        folder.mkdir()
        photos(folder, batch * (steps + 2), 768)
        write_shards(iter_folder(folder), shards, per_shard=64)
        images = load_shards(str(shards), size, "random", 3, 0 if processes else 2).images
        loader = BatchLoader(images, batch, prefetch=2, processes=processes, device=torch.device(device))
        batches, step = loader.epoch(0), vaekit_step(size, batch, device)
        sync = torch.cuda.synchronize if device == "cuda" else lambda: None
        step(next(batches))
        sync()
        waited = total = 0.0
        for _ in range(steps):
            start = time.perf_counter()
            x = next(batches)
            got = time.perf_counter()
            step(x)
            sync()
            waited += got - start
            total += time.perf_counter() - start
    return {"loader_share": waited / total, "step_s": total / steps, "processes": processes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or ROOT / "benchmarks" / "results"))
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu-check: no CUDA device on this machine; nothing to check (run it where a GPU is lent)")
        return
    name = torch.cuda.get_device_name()
    result: dict = {"device": name, "torch": torch.__version__, "date": date.today().isoformat(),
                    "machine": platform.node(), "size": args.size, "batch": args.batch}  # fmt: skip
    if not args.skip_tests:
        started = time.perf_counter()
        tests = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu", "tests/gpu"],
            cwd=ROOT, capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        result["tests"] = {"returncode": tests.returncode, "summary": tests.stdout.strip().splitlines()[-1:],
                           "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
        print(f"gpu tests: {result['tests']['summary']}")
    speed = {}
    steps = {"vaekit": vaekit_step(args.size, args.batch), "diffusers": diffusers_step(args.size, args.batch)}
    for kind, step in steps.items():
        speed[kind] = timed(step, args.batch, args.steps)
        flops = flops_of(step)
        speed[kind]["tflop_per_step"] = flops / 1e12
        speed[kind]["achieved_tflops"] = flops / 1e12 / speed[kind]["step_s"]
        peak = peak_tflops(name)
        speed[kind]["fraction_of_peak"] = speed[kind]["achieved_tflops"] / peak if peak else None
        print(f"{kind}: {speed[kind]}")
    for kind, step in steps.items():  # a second, interleaved round: the ratio is not an order effect
        speed[kind]["images_per_s_again"] = timed(step, args.batch, args.steps)["images_per_s"]
    result["kl_f8_sd"] = speed
    result["conv_celeba64"] = timed(conv_celeba_step(128), 128, args.steps)
    result["loader"] = loader_share(128, args.steps)
    print(f"conv-celeba64: {result['conv_celeba64']}; loader: {result['loader']}")
    result["shard_loader"] = [shard_loader_share(args.size, args.batch, args.steps, p) for p in (0, 2)]
    print(f"shards decoded while training: {result['shard_loader']}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu-check.json").write_text(json.dumps(result, indent=2))
    rows = [f"GPU check on {name}, torch {torch.__version__}, {result['date']}", "",
            "| measurement | vaekit | diffusers |", "|---|---|---|"]  # fmt: skip
    for key, label in (("images_per_s", "kl-f8-sd 256 px bf16, images/s"), ("achieved_tflops", "achieved TFLOP/s"),
                       ("fraction_of_peak", "fraction of bf16 peak")):  # fmt: skip
        values = [speed[k].get(key) for k in ("vaekit", "diffusers")]
        rows.append(f"| {label} | " + " | ".join("-" if v is None else f"{v:.3g}" for v in values) + " |")
    rows.append(f"| conv-celeba64 (batch 128) images/s | {result['conv_celeba64']['images_per_s']:.0f} | - |")
    rows.append(f"| loader share of a conv-celeba64 step | {result['loader']['loader_share']:.1%} | - |")
    for shard in result["shard_loader"]:
        how = f"{shard['processes']} worker processes" if shard["processes"] else "a prefetch thread"
        label = f"loader share, kl-f8-sd {args.size} px from JPEG shards, {how}"
        rows.append(f"| {label} | {shard['loader_share']:.1%} | - |")
    (args.out / "gpu-check.md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
