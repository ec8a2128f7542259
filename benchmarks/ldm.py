"""KL autoencoder (latent diffusion) measurements: training speed against diffusers' own training
step, gradient checkpointing, and tiled full-size reconstruction. Each measurement runs in its own
process (peak RSS per run); speed runs are interleaved and repeated.

    python benchmarks/ldm.py speed  [--size 256] [--batch 2] [--steps 3] [--repeats 2] [--threads 2]
    python benchmarks/ldm.py memory [--size 256] [--batch 2]
    python benchmarks/ldm.py tiling [--side 2048]

speed: the kl-f8-sd architecture (diffusers' AutoencoderKL, 83.7 M parameters) at SIZE px, bf16
autocast, AdamW; "diffusers" is the step of diffusers' train_vae example (encode, sample, decode,
L1 + KL x 1e-6, backward, step), "vaekit" is vaekit's trainer update of the same network with the
same loss (Laplace = L1 likelihood, KL weight 1e-6). Images/s after one warm-up step.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

SD = {
    "model.arch": "autoencoder-kl",
    "model.autoencoder_kl.block_out_channels": [128, 256, 512, 512],
    "model.autoencoder_kl.layers_per_block": 2,
    "likelihood.name": "laplace",
    "likelihood.output": "signed",
    "objective.kl.weight": 1e-6,
    "train.optimizer": "adamw",
    "train.precision": "bf16",
}


def _config(size: int, batch: int, checkpointing: bool = False):
    from vaekit.config import Config

    return Config().with_overrides(
        {
            **SD,
            "data.image_size": size,
            "data.channels": 3,
            "train.batch_size": batch,
            "train.gradient_checkpointing": checkpointing,
        }
    )


def run_vaekit(size: int, batch: int, steps: int, checkpointing: bool) -> dict:
    from vaekit import noise
    from vaekit.engine.precision import Precision
    from vaekit.engine.step import StepInfo, update
    from vaekit.models import create_model
    from vaekit.objectives import create_objective

    config = _config(size, batch, checkpointing)
    model = create_model(config).train()
    if checkpointing:
        model.set_gradient_checkpointing(True)
    precision = Precision("bf16", torch.device("cpu"))
    objective = create_objective(model, config, precision)
    images = torch.rand(batch, 3, size, size)
    times = []
    for step in range(steps + 1):
        start = time.perf_counter()
        update(objective, precision, images, StepInfo(step, 0.0, 100, batch), noise.step_seed(0, step))
        times.append(time.perf_counter() - start)
    return {"images_per_s": batch * steps / sum(times[1:]), "step_s": statistics.median(times[1:])}


def run_diffusers(size: int, batch: int, steps: int, checkpointing: bool) -> dict:
    """diffusers' examples/research_projects/vae/train_vae.py step, reduced to L1 + KL."""
    from diffusers import AutoencoderKL

    from vaekit.models.autoencoder_kl import AutoencoderKLConfig, diffusers_config

    options = AutoencoderKLConfig(block_out_channels=[128, 256, 512, 512], layers_per_block=2)
    vae = AutoencoderKL(**diffusers_config(options, (3, size, size))).train()
    if checkpointing:
        vae.enable_gradient_checkpointing()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=1e-4)
    images = torch.rand(batch, 3, size, size) * 2 - 1
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            posterior = vae.encode(images).latent_dist
            z = posterior.sample()
            pred = vae.decode(z).sample
        rec_loss = torch.nn.functional.l1_loss(pred.float(), images)
        kl_loss = posterior.kl().mean()
        loss = rec_loss + 1e-6 * kl_loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return {"images_per_s": batch * steps / sum(times[1:]), "step_s": statistics.median(times[1:])}


def run_tiling(side: int) -> dict:
    from vaekit.config import load_preset
    from vaekit.explore.tiling import reconstruct_tiled
    from vaekit.models import create_model

    config = load_preset("kl-f8-celeba64").with_overrides(["likelihood.perceptual.random_weights=true"])
    model = create_model(config).eval()
    image = torch.rand(3, side, side)
    start = time.perf_counter()
    out = reconstruct_tiled(model, image)
    return {"seconds": time.perf_counter() - start, "shape": list(out.shape), "tile": model.image_shape[-1]}


def child(kind: str, args: dict) -> dict:
    torch.set_num_threads(args.pop("threads"))
    result = {"vaekit": run_vaekit, "diffusers": run_diffusers, "tiling": run_tiling}[kind](**args)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def spawn(kind: str, **args) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, json.dumps(args)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], json.loads(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["speed", "memory", "tiling"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--side", type=int, default=2048)
    args = parser.parse_args()
    common = {"size": args.size, "batch": args.batch, "threads": args.threads}
    if args.what == "speed":
        rates: dict[str, list[float]] = {"diffusers": [], "vaekit": []}
        for _ in range(args.repeats):
            for kind in rates:
                result = spawn(kind, steps=args.steps, checkpointing=False, **common)
                rates[kind].append(result["images_per_s"])
                print(kind, result, flush=True)
        d, v = statistics.median(rates["diffusers"]), statistics.median(rates["vaekit"])
        print(f"median images/s: diffusers {d:.3f}, vaekit {v:.3f}, ratio vaekit/diffusers {v / d:.2f}")
    elif args.what == "memory":
        for checkpointing in (False, True):
            result = spawn("vaekit", steps=2, checkpointing=checkpointing, **common)
            print(f"gradient_checkpointing={checkpointing}: {result}", flush=True)
    else:
        print(spawn("tiling", side=args.side, threads=args.threads))


if __name__ == "__main__":
    main()
