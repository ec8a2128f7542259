"""Training speed and memory: vaekit against pythae on one network, and vaekit's presets.

    make bench-setup                       # pythae into .venv (benchmarks only)
    .venv/bin/python benchmarks/speed.py --data ../shared/data --threads 2 --repeats 2

Every measurement runs in its own child process (so peak RSS is that job's alone), one after the
other, interleaved across repeats; the report gives the median of the repeats.

1. pythae's MNIST benchmark network (``Encoder_Conv_VAE_MNIST`` / ``Decoder_Conv_AE_MNIST``,
   z=16, batch 100, Adam 1e-3) trained by pythae's ``BaseTrainer`` and, built layer for layer
   from vaekit's layers (same shapes and parameter count), by vaekit's trainer, on the same MNIST
   images with the same thread count: images/s over the steps after a warm-up, peak RSS, and the
   final training loss (mean of the last 20 steps, in pythae's convention 0.5 * SSE + KL).
2. vaekit presets at 28, 64 and 256 px: train images/s, encode/decode images/s, peak RSS, and the
   share of each step that the loader takes.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from torch import nn

PYTHAE_VARIANTS = {
    "pythae fp32": {"framework": "pythae"},
    "vaekit fp32": {"framework": "vaekit", "precision": "fp32"},
    "vaekit bf16": {"framework": "vaekit", "precision": "bf16"},
    "vaekit fp32 channels-last": {"framework": "vaekit", "precision": "fp32", "channels_last": True},
    "vaekit bf16 channels-last": {"framework": "vaekit", "precision": "bf16", "channels_last": True},
    "vaekit bf16 compile": {"framework": "vaekit", "precision": "bf16", "compile": True},
}
PRESETS = {  # preset: (data folder under --data, steps, warm-up steps)
    "conv-mnist": ("mnist", 60, 10),
    "conv-celeba64": ("celeba-subset", 30, 5),
    "as-intro-fantasy256": ("bob-ross-paintings", 8, 2),
}
GAUSSIAN_CONSTANT = 784 * 0.5 * math.log(2 * math.pi)  # vaekit's Gaussian NLL minus pythae's 0.5 * SSE


# ---------------------------------------------------------------------- the shared network
def pythae_mnist_network():
    """pythae's MNIST benchmark network as a vaekit architecture (handed to the trainer as its model)."""
    from vaekit.models.base import VAE
    from vaekit.models.blocks import Conv2d, LatentHead

    class PythaeMnistVAE(VAE):
        """Conv 1->128->256->512->1024 (k4 s2, BN, ReLU), linear heads; linear to 1024x4x4,
        ConvTranspose 1024->512->256->1 (k3 s2, BN, ReLU), sigmoid output (the likelihood's)."""

        def __init__(self, config, likelihood, image_shape):
            super().__init__(likelihood, image_shape)
            z = config.latent_dim
            self.latent_shape = (z,)
            encoder: list[nn.Module] = []
            for c_in, c_out in [(1, 128), (128, 256), (256, 512), (512, 1024)]:
                encoder += [Conv2d(c_in, c_out, 4, 2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
            self.encoder = nn.Sequential(*encoder, nn.Flatten(), LatentHead(1024, z))
            self.decoder = nn.Sequential(
                nn.Linear(z, 1024 * 4 * 4),
                nn.Unflatten(1, (1024, 4, 4)),
                nn.ConvTranspose2d(1024, 512, 3, 2, padding=1),
                nn.BatchNorm2d(512),
                nn.ReLU(),
                nn.ConvTranspose2d(512, 256, 3, 2, padding=1, output_padding=1),
                nn.BatchNorm2d(256),
                nn.ReLU(),
                nn.ConvTranspose2d(256, 1, 3, 2, padding=1, output_padding=1),
            )

    return PythaeMnistVAE


def mnist_train(data: Path, n: int):
    """The first ``n`` MNIST training images, as a vaekit dataset (uint8, in the image cache)."""

    from vaekit.config import DataConfig
    from vaekit.data import load_dataset

    dataset = load_dataset(DataConfig(source=str(data / "mnist"), image_size=28, channels=1))
    return dataset.split("train").subset(np.arange(n))


# ---------------------------------------------------------------------- workers (child processes)
def run_pythae(job: dict) -> dict:
    from pythae.data.datasets import BaseDataset
    from pythae.models import VAE, VAEConfig
    from pythae.models.nn.benchmarks.mnist import Decoder_Conv_AE_MNIST, Encoder_Conv_VAE_MNIST
    from pythae.trainers import BaseTrainer, BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    images = torch.from_numpy(np.asarray(mnist_train(Path(job["data"]), job["steps"] * 100).images)).float() / 255
    config = VAEConfig(input_dim=(1, 28, 28), latent_dim=16, reconstruction_loss="mse")
    model = VAE(config, encoder=Encoder_Conv_VAE_MNIST(config), decoder=Decoder_Conv_AE_MNIST(config))
    losses: list[torch.Tensor] = []
    loss_function = model.loss_function

    def recording_loss(*args):
        result = loss_function(*args)
        losses.append(result[0].detach())
        return result

    model.loss_function = recording_loss
    ends: list[float] = []

    class StepTimes(TrainingCallback):
        def on_train_step_end(self, training_config, **kwargs):
            ends.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as out:
        training = BaseTrainerConfig(
            output_dir=out,
            per_device_train_batch_size=100,
            learning_rate=1e-3,
            num_epochs=1,
            no_cuda=job["device"] != "cuda",
            seed=0,
            amp=job.get("amp", False),
        )
        trainer = BaseTrainer(model, BaseDataset(images, torch.zeros(len(images))), None, training, [StepTimes()])
        trainer.prepare_training()
        losses.clear()  # the sanity check's forward pass
        trainer.train_step(epoch=1)
    warm = job["warmup"]
    return {
        "images_per_s": 100 * (len(ends) - warm) / (ends[-1] - ends[warm - 1]),
        "final_loss": torch.stack(losses[-20:]).mean().item(),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def _train_vaekit(config, warmup: int, run_dir: Path, dataset=None, model=None):
    """Train with vaekit's trainer; images/s over the steps after ``warmup``, and the trainer."""
    import csv

    from vaekit.training.trainer import Trainer

    config = config.with_overrides({"train.log_every": warmup})
    trainer = Trainer(config, run_dir, dataset=dataset, model=model)
    trainer.fit()
    with open(trainer.run.metrics) as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "train"]
    first, last = rows[0], rows[-1]
    images = (int(last["step"]) - int(first["step"])) * config.train.batch_size
    rate = images / (float(last["elapsed_s"]) - float(first["elapsed_s"]))
    return rate, rows, trainer


def run_vaekit(job: dict) -> dict:
    from vaekit.config import Config
    from vaekit.likelihoods import create_likelihood

    steps = job["steps"]
    overrides = {
        "data.source": str(Path(job["data"]) / "mnist"),
        "data.image_size": 28,
        "data.channels": 1,
        "data.val_fraction": 0.0,
        "model.latent_dim": 16,
        "likelihood.name": "gaussian",
        "likelihood.scale": 1.0,
        "train.batch_size": 100,
        "train.lr": 1e-3,
        "train.epochs": 1,
        "train.checkpoint_every": 10**9,
        "train.grid_size": 4,
        "train.device": job["device"],
        "train.precision": job["precision"],
        "train.channels_last": job.get("channels_last", False),
        "train.compile": job.get("compile", False),
    }
    config = Config().with_overrides(overrides)
    model = pythae_mnist_network()(config.model, create_likelihood(config.likelihood), (1, 28, 28))
    with tempfile.TemporaryDirectory() as out:
        dataset = mnist_train(Path(job["data"]), steps * 100)
        dataset.partition = None  # all of it is for training
        rate, rows, trainer = _train_vaekit(config, job["warmup"], Path(out) / "run", dataset, model)
    window = max(1, 20 // job["warmup"])
    final = statistics.fmean(float(r["loss"]) for r in rows[-window:]) - GAUSSIAN_CONSTANT
    return {
        "images_per_s": rate,
        "final_loss": final,
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
    }


def run_preset(job: dict) -> dict:
    from vaekit.config import load_preset
    from vaekit.evaluation.speed import throughput

    config = load_preset(job["preset"]).with_overrides(
        {
            "data.source": job["data"],
            "train.max_steps": job["steps"],
            "train.epochs": 10**6,
            "train.checkpoint_every": 10**9,
            "train.grid_size": 4,
            "train.device": job["device"],
            "train.precision": job["precision"],
        }
    )
    with tempfile.TemporaryDirectory() as out:
        rate, _, trainer = _train_vaekit(config, job["warmup"], Path(out) / "run")
        loader_s = _loader_seconds(trainer.loader, job["steps"])
    with trainer.precision.autocast():
        speed = throughput(trainer.model, batch_size=config.train.batch_size)
    step_s = config.train.batch_size / rate
    return {
        "images_per_s": rate,
        "encode_images_per_s": speed["encode_images_per_s"],
        "decode_images_per_s": speed["decode_images_per_s"],
        "loader_share": loader_s / step_s,
        "batch_size": config.train.batch_size,
    }


def _loader_seconds(loader, batches: int) -> float:
    """Seconds per batch for the loader alone (uint8 cache -> float batch on the device)."""
    iterator = loader.epoch(1)
    next(iterator)
    started = time.perf_counter()
    n = 0
    for n, batch in enumerate(iterator, start=1):  # noqa: B007
        if n == batches:
            break
    if batch.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / max(n, 1)


WORKERS = {"pythae": run_pythae, "vaekit": run_vaekit, "preset": run_preset}


def worker(job: dict) -> None:
    torch.set_num_threads(job["threads"])
    result = WORKERS[job["kind"]](job)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if job["device"] == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print("RESULT " + json.dumps(result))


# ---------------------------------------------------------------------- the machine's ceiling
def matmul_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of the best of ``repeats`` square matrix products in ``dtype`` (the threads set)."""
    from vaekit.defaults import matmul_seconds

    return 2 * size**3 / matmul_seconds(dtype, size, repeats) / 1e9


def step_gflop_per_image() -> float:
    """Forward + backward GFLOP per image of the pythae network's training step (torch's count of
    the matrix products and convolutions; the rest is far below 1 %)."""
    from torch.utils.flop_counter import FlopCounterMode

    from vaekit.config import Config
    from vaekit.likelihoods import create_likelihood

    config = Config().with_overrides({"model.latent_dim": 16, "likelihood.name": "gaussian"})
    model = pythae_mnist_network()(config.model, create_likelihood(config.likelihood), (1, 28, 28))
    images = torch.rand(8, 1, 28, 28)
    with FlopCounterMode(display=False) as counter:
        output = model(images)
        (output.params.square().mean() + output.posterior.kl().mean()).backward()
    return counter.get_total_flops() / len(images) / 1e9


# ---------------------------------------------------------------------- the run
def spawn(job: dict) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(job)], capture_output=True, text=True, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-1:]}
    return json.loads(lines[-1][len("RESULT ") :])


def median_of(results: list[dict]) -> dict:
    good = [r for r in results if "error" not in r]
    if not good:
        return results[0]
    return {key: statistics.median(r[key] for r in good) for key in good[0] if isinstance(good[0][key], float | int)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("../shared/data"),
        help="folder holding mnist/, celeba-subset/, ... (default: ../shared/data)",
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--steps", type=int, default=60, help="pythae-network training steps per measurement")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--only", choices=["compare", "presets"], help="run one part")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return

    common = {"data": str(args.data.resolve()), "threads": args.threads, "device": args.device}
    print(f"# vaekit speed benchmark, {date.today().isoformat()}")
    print(f"machine: {platform.machine()}, {args.threads} threads, torch {torch.__version__}, device {args.device}\n")
    if args.only != "presets":
        compare(args, common)
    if args.only != "compare":
        presets(args, common)


def compare(args, common: dict) -> None:
    variants = dict(PYTHAE_VARIANTS)
    if args.device == "cuda":
        variants["pythae fp16 amp"] = {"framework": "pythae", "amp": True}
        variants["vaekit fp16"] = {"framework": "vaekit", "precision": "fp16"}
    results: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, variant in variants.items():
            job = {**common, "kind": variant["framework"], "steps": args.steps, "warmup": 10, **variant}
            results[name].append(spawn(job))
            print(f"  {name}: {results[name][-1]}", file=sys.stderr)
    base = median_of(results["pythae fp32"]).get("images_per_s", math.nan)
    torch.set_num_threads(args.threads)
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    gflop = step_gflop_per_image()
    print(f"## pythae MNIST network, batch 100, {args.steps} steps, median of {args.repeats}\n")
    print(
        f"{gflop:.3f} GFLOP per image per step; matrix-product peak here: fp32 {peaks['fp32']:.0f} GFLOP/s, "
        f"bf16 {peaks['bf16']:.0f} GFLOP/s ({args.threads} threads, 2048^3)\n"
    )
    print("| run | images/s | vs pythae fp32 | GFLOP/s (share of peak) | final loss | peak RSS MB | parameters |")
    print("|---|---|---|---|---|---|---|")
    for name in variants:
        r = median_of(results[name])
        if "error" in r:
            print(f"| {name} | failed: {r['error']} | | | | |")
            continue
        achieved = r["images_per_s"] * gflop
        peak = peaks["bf16" if "bf16" in name or "fp16" in name else "fp32"]
        print(
            f"| {name} | {r['images_per_s']:.1f} | {r['images_per_s'] / base:.2f}x | {achieved:.0f} "
            f"({achieved / peak:.0%}) | {r['final_loss']:.2f} | {r['peak_rss_mb']:.0f} | {r['parameters']:,} |"
        )
    print()


def presets(args, common: dict) -> None:
    print("## vaekit presets\n")
    print("| preset | precision | batch | train img/s | encode img/s | decode img/s | loader share | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for preset, (folder, steps, warmup) in PRESETS.items():
        for precision in ("fp32", "bf16"):
            job = {**common, "kind": "preset", "preset": preset, "steps": steps, "warmup": warmup}
            job.update(data=str(args.data.resolve() / folder), precision=precision)
            r = median_of([spawn(job) for _ in range(args.repeats)])
            if "error" in r:
                print(f"| {preset} | {precision} | failed: {r['error']} | | | | | |")
                continue
            print(
                f"| {preset} | {precision} | {r['batch_size']} | {r['images_per_s']:.1f} "
                f"| {r['encode_images_per_s']:.0f} | {r['decode_images_per_s']:.0f} | {r['loader_share']:.1%} "
                f"| {r['peak_rss_mb']:.0f} |"
            )


if __name__ == "__main__":
    main()
