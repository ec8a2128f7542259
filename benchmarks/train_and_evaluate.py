"""Train a preset for a budget, then measure it on the held-out split.

    python benchmarks/train_and_evaluate.py --preset conv-mnist --data ../shared/data/mnist \
        --out benchmarks/results/conv-mnist-3ep --set train.epochs=3

Writes OUT/ (the run) and OUT/benchmark.json: wall-clock training time, the held-out negative
ELBO (nats per image, whole split, fixed seed), reconstruction MSE / PSNR, and the machine.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from datetime import date
from pathlib import Path

import torch

import vaekit
from vaekit.data import load_dataset
from vaekit.evaluation import evaluate_elbo, reconstruction_metrics
from vaekit.io.checkpoints import list_checkpoints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", required=True)
    parser.add_argument("--data")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--set", dest="overrides", nargs="+", default=[])
    parser.add_argument("--split", default="test", help="held-out split to measure (test/val)")
    args = parser.parse_args()

    started = time.perf_counter()
    run = vaekit.train(preset=args.preset, data=args.data, out=args.out, overrides=args.overrides)
    wall = time.perf_counter() - started

    model = vaekit.load(run)
    config = model.config
    held_out = load_dataset(config.data).split(args.split, config.data.val_fraction, config.data.seed)
    result = {
        "preset": args.preset,
        "overrides": args.overrides,
        "train_wall_s": round(wall, 1),
        "train_steps": int(list_checkpoints(run / "checkpoints")[-1].name.split("-")[1]),
        "held_out_split": args.split,
        "held_out_images": len(held_out),
        **{f"held_out_{k}": v for k, v in evaluate_elbo(model, held_out.images).items()},
        "latent_shape": list(model.latent_shape),
        **{f"held_out_{k}": v for k, v in reconstruction_metrics(model, held_out.images).items()},
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip()
        + f", {torch.get_num_threads()} threads, torch {torch.__version__}",
        "date": date.today().isoformat(),
    }
    latent_elements = math.prod(model.latent_shape)
    result["held_out_kl_bits_per_latent"] = result["held_out_kl"] / math.log(2) / latent_elements
    (run / "benchmark.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
