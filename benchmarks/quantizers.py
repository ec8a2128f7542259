"""Quantizers side by side at equal CPU time: plain VQ, VQ with EMA + k-means + dead-code restarts,
FSQ and LFQ (about 1,000 codes each) and the KL autoencoder of the same network.

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/quantizers.py --data ../shared/data/celeba-subset \
        --minutes 6 --out benchmarks/results/quantizers

Every variant trains kl-f8-celeba64's network at a CPU size (autoencoder-kl, 16..64 channels, 8x8x4
latents) with an L1 likelihood (LPIPS' weights cannot be downloaded here; no PatchGAN, to spend the
budget on the autoencoder) for ``--minutes`` on one thread. Then: held-out code usage and perplexity
(``evaluate --metrics codebook``), PSNR / SSIM, rFID and sample FID in a CelebA-attribute classifier's
features (trained here, as in BENCHMARKS.md: Inception's weights cannot be downloaded), samples from the
prior (uniform codes for a tokenizer, N(0, I) for the KL model) and from the fitted ex-post sampler
(the autoregressive token prior, or the Gaussian mixture). ``--tiny`` runs every step in seconds
(the smoke test). Writes OUT/quantizers.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

import vaekit
from vaekit.config import DataConfig
from vaekit.data import load_dataset
from vaekit.data.dataset import first_rows
from vaekit.explore.grids import save_grid
from vaekit.features.classifier import save_classifier, train_classifier

NETWORK = {
    "model.autoencoder_kl.block_out_channels": [16, 32, 64, 64],
    "model.autoencoder_kl.norm_num_groups": 16,
    "likelihood.name": "laplace",
    "likelihood.learn_scale": False,
    "objective.adversarial.enabled": False,
    "train.threads": 1,
    "train.ema_decay": 0.0,
    "train.fit_sampler": False,  # each variant's sampler is fitted below, as a step of its own
}
VARIANTS = {  # about 1,000 codes each, one token per latent position
    "kl": {"model.latent": "gaussian"},
    "vq-plain": {"model.latent": "vq", "model.vq.ema": False},
    "vq-ema-kmeans-restarts": {
        "model.latent": "vq",
        "model.vq.kmeans_init": True,
        "model.vq.restart_threshold": 0.1,
    },
    "fsq": {"model.latent": "fsq", "model.fsq.levels": [8, 5, 5, 5]},
    "fsq-whitened": {"model.latent": "fsq", "model.fsq.levels": [8, 5, 5, 5], "model.fsq.whiten": True},
    # LFQ's tokens are log2(K) = 10 sign bits: 10 latent channels (4, projected, reach at most 386 codes)
    "lfq": {"model.latent": "lfq", "model.lfq.codebook_size": 1024, "model.autoencoder_kl.latent_channels": 10},
    # the entropy weight for a summed NLL: 0.1 is the library's for a mean reconstruction loss
    "lfq-entropy-10": {
        "model.latent": "lfq",
        "model.lfq.codebook_size": 1024,
        "model.autoencoder_kl.latent_channels": 10,
        "model.lfq.entropy_weight": 10.0,
    },
}
TINY = {"data.limit": 96, "train.batch_size": 16, "model.autoencoder_kl.block_out_channels": [8, 8, 8, 8],
        "model.autoencoder_kl.norm_num_groups": 8}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=6.0, help="training budget of each variant")
    parser.add_argument("--prior-minutes", type=float, default=2.0, help="fitting budget of each token prior")
    parser.add_argument("--images", type=int, default=1000, help="held-out images scored")
    parser.add_argument("--samples", type=int, default=1000, help="generated images per FID")
    parser.add_argument("--tiny", action="store_true", help="seconds, not minutes: the smoke test")
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), help="measure these variants only")
    parser.add_argument("--figures", type=Path, help="draw code usage and reconstructions of the runs into this folder")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.figures:
        draw_figures(args, args.figures)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    classifier = domain_classifier(args)
    results = {}
    for name, variant in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        results[name] = measure(args, name, variant, classifier)
        print(json.dumps({name: results[name]}, default=float))
    summary = {
        "variants": results,
        "minutes": args.minutes,
        "machine": f"{platform.machine()}, 1 thread",
        "date": date.today().isoformat(),
    }
    suffix = "-" + "-".join(args.only) if args.only else ""
    (args.out / f"quantizers{suffix}.json").write_text(json.dumps(summary, indent=2, default=float))
    print_table(results, args.minutes)


def domain_classifier(args: argparse.Namespace) -> Path:
    """The CelebA-attribute classifier whose features FID uses (trained once, kept in OUT)."""
    path = args.out / "celeba-attributes-classifier.safetensors"
    if not path.is_file():
        config = DataConfig(source=args.data, image_size=64, crop="celeba-center140", limit=200 if args.tiny else None)
        data = load_dataset(config)
        network, accuracy = train_classifier(data.split("train"), data.split("test"), epochs=1 if args.tiny else 4)
        save_classifier(network, path)
        print(f"domain classifier: test accuracy {accuracy:.4f}")
    return path


def measure(args: argparse.Namespace, name: str, variant: dict, classifier: Path) -> dict:
    run = args.out / name
    settings = {**NETWORK, **variant, **(TINY if args.tiny else {})}
    budget = ["train.max_steps=2"] if args.tiny else [f"train.max_time={args.minutes * 60:.0f}"]
    if not (run / "model" / "model.safetensors").is_file():
        overrides = [f"{key}={json.dumps(value)}" for key, value in settings.items()] + budget
        vaekit.train(preset="kl-f8-celeba64", data=args.data, out=run, overrides=overrides, overwrite=True)
    tokenizer = variant["model.latent"] != "gaussian"
    sampler = "autoregressive" if tokenizer else "gmm"
    started = time.perf_counter()
    options = {"max_time": args.prior_minutes * 60, "steps": 3 if args.tiny else 100_000} if tokenizer else {}
    fitted = vaekit.fit_sampler(run, sampler=sampler, **options)
    fit_s = time.perf_counter() - started
    images, samples = (16, 16) if args.tiny else (args.images, args.samples)
    common = {"features": str(classifier), "max_images": images, "n_samples": samples, "batch_size": 64}
    metrics = ["reconstruction", "rfid", "fid", *(["codebook"] if tokenizer else [])]
    prior = vaekit.evaluate(run, metrics=metrics, sampler="prior", **common)["metrics"]
    fitted_scores = vaekit.evaluate(run, metrics=["fid"], sampler=sampler, **common)["metrics"]
    last = training_rows(run)[-1]
    return {
        "steps": int(last["step"]),
        "train_code_usage": float(last["code_usage"]) if tokenizer else None,
        "psnr": prior["reconstruction"]["psnr"],
        "ssim": prior["reconstruction"]["ssim"],
        "rfid": prior["generation"]["rfid"],
        "fid_prior": prior["generation"]["fid"],
        "fid_fitted": fitted_scores["generation"]["fid"],
        "sampler": fitted.describe(),
        "sampler_fit_s": round(fit_s, 1),
        "codebook": prior.get("codebook"),
    }


def training_rows(run: Path) -> list[dict]:
    """The training rows of a run's metrics.csv, in step order."""
    with (run / "metrics.csv").open(newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["split"] == "train"]


def draw_figures(args: argparse.Namespace, folder: Path) -> None:
    """The README's pictures from the runs in OUT: each tokenizer's code usage while training, and
    held-out faces, their reconstructions and token-prior samples of the three healthy tokenizers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
    for name in VARIANTS:
        rows = training_rows(args.out / name) if (args.out / name / "metrics.csv").is_file() else []
        if rows and rows[0].get("code_usage"):
            steps, usage = [int(r["step"]) for r in rows], [100 * float(r["code_usage"]) for r in rows]
            axes.plot(steps, usage, label=name, linestyle="--" if "whitened" in name else "-")  # it overlays VQ
    axes.set(xlabel="training step (batches of 32)", ylabel="codes used in the last 100 steps (%)", ylim=(0, 102))
    axes.legend(fontsize=8)
    figure.savefig(folder / "quantizers-code-usage.png", dpi=110)
    data = load_dataset(DataConfig(source=args.data, image_size=64, crop="celeba-center140"))
    faces = torch.as_tensor(np.asarray(first_rows(data.split("test").images, 8))).float() / 255
    rows = [faces]
    healthy = ("vq-ema-kmeans-restarts", "fsq-whitened", "lfq-entropy-10")
    rows += [vaekit.reconstruct(args.out / name, faces) for name in healthy]
    rows += [vaekit.sample(args.out / name, 8, sampler="autoregressive") for name in healthy]
    save_grid(torch.cat(rows), folder / "quantizers-recon-samples.png", nrow=8)


def print_table(results: dict, minutes: float) -> None:
    print(f"| {minutes:g} min, 1 thread | steps | code usage (held out) | perplexity | PSNR | SSIM | rFID | "
          "FID prior | FID fitted sampler |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        book = r["codebook"] or {}
        usage = f"{book['code_usage']:.1%} of {book['codes']}" if book else "-"
        perplexity = f"{book['perplexity']:.0f}" if book else "-"
        print(f"| {name} | {r['steps']} | {usage} | {perplexity} | {r['psnr']:.2f} dB | {r['ssim']:.3f} | "
              f"{r['rfid']:.1f} | {r['fid_prior']:.1f} | {r['fid_fitted']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
