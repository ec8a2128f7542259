"""Quality after 2, 5 and 10 minutes of training, per dataset, for:

  default   vaekit with no preset: the settings chosen from the data (vaekit.defaults)
  old       vaekit's defaults before they were chosen from the data (``Config()`` as it is)
  preset    the best vaekit preset for that data
  pythae    pythae's VAE with the network and settings of its own example scripts for that kind of
            data (MNIST: the MNIST benchmark network, z=16, batch 100, Adam 1e-3; 64 px RGB: the
            CelebA benchmark network, z=64, batch 64, Adam 1e-4), images as arrays as pythae
            expects (``make bench-setup`` installs it)

    python benchmarks/time_to_quality.py [--datasets mnist anime celeba paintings] [--marks 2 5 10]
                                         [--systems default old preset pythae] [--threads 2] [--json OUT]
    python benchmarks/time_to_quality.py --table OUT [OUT ...]     # the Markdown table of earlier runs

Each system trains alone, one after another, with the same torch threads; it is scored at each mark
on the first 2,000 held-out images (PSNR / SSIM of reconstructions; test NLL (IWAE, k=100) for
MNIST), and every number goes to --json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from budget import scores, train_for

import vaekit

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "time-to-quality"

DATASETS = {  # name: (source, image size, best preset)
    "mnist": ("mnist", 28, "conv-mnist"),
    "anime": ("anime-faces", 64, "anime-l1"),
    "celeba": ("celeba-subset", 64, "spatial-celeba64"),
    "paintings": ("bob-ross-paintings", 64, "anime-l1"),
}


def vaekit_system(system: str, dataset: str, out: Path, marks: list[float]) -> list[dict]:
    source, size, best = DATASETS[dataset]
    data = str(DATA / source)
    preset = best if system == "preset" else None
    options = {"config": vaekit.Config()} if system == "old" else {}  # an explicit config: nothing chosen
    overrides = [f"data.image_size={size}"] if system == "old" else []
    rows = []
    metrics = ["reconstruction", *(["nll"] if dataset == "mnist" else [])]
    for i, minutes in enumerate(marks):  # after the first mark, each run resumes (preset and config are its own)
        trained = train_for(preset, data, out, minutes * 60, overrides, resume=i > 0, **options)
        # the first 2,000 held-out images: IWAE NLL (k=100) over all 10,000 MNIST test digits takes
        # longer on one core than the 2-minute mark it would score
        rows.append({"minutes": minutes, **trained, **scores(out, data, None, metrics, max_images=2000)})
        print(json.dumps({"dataset": dataset, "system": system, **rows[-1]}), flush=True)
    return rows


def pythae_system(dataset: str, marks: list[float]) -> list[dict]:
    """pythae's VAE trained by our loop for exactly the budget (its trainer has no time limit),
    scored with vaekit's PSNR / SSIM on the same held-out images."""
    try:
        from pythae.models import VAE, VAEConfig
    except ImportError:
        raise SystemExit("pythae is not installed: make bench-setup") from None
    from vaekit.config import DataConfig
    from vaekit.data import load_dataset
    from vaekit.evaluation.image_quality import psnr, ssim

    source, size, _ = DATASETS[dataset]
    full = load_dataset(DataConfig(source=str(DATA / source), image_size=size, channels=1 if size == 28 else 3))
    train, test = full.split("train"), full.split("test")
    if size == 28:
        from pythae.models.nn.benchmarks.mnist import Decoder_Conv_AE_MNIST as Decoder
        from pythae.models.nn.benchmarks.mnist import Encoder_Conv_VAE_MNIST as Encoder

        latent, batch, lr = 16, 100, 1e-3
    else:
        from pythae.models.nn.benchmarks.celeba import Decoder_Conv_AE_CELEBA as Decoder
        from pythae.models.nn.benchmarks.celeba import Encoder_Conv_VAE_CELEBA as Encoder

        latent, batch, lr = 64, 64, 1e-4
    config = VAEConfig(input_dim=tuple(train.image_shape), latent_dim=latent, reconstruction_loss="mse")
    model = VAE(config, encoder=Encoder(config), decoder=Decoder(config))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    images = torch.from_numpy(np.asarray(train.images)).float() / 255
    held_out = torch.from_numpy(np.asarray(test.images[:2000])).float() / 255  # as vaekit_system scores
    rows, elapsed, steps = [], 0.0, 0
    generator = torch.Generator().manual_seed(0)
    for minutes in marks:
        model.train()
        while elapsed < minutes * 60:
            started = time.perf_counter()
            index = torch.randint(len(images), (batch,), generator=generator)
            loss = model({"data": images[index]}).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            elapsed += time.perf_counter() - started
            steps += 1
        model.eval()
        with torch.no_grad():
            recon = torch.cat([model({"data": chunk}).recon_x for chunk in held_out.split(256)]).clamp(0, 1)
        row = {
            "minutes": minutes,
            "steps": steps,
            "train_s": elapsed,
            "reconstruction.psnr": float(psnr(recon, held_out).mean()),
            "reconstruction.ssim": float(ssim(recon, held_out).mean()),
        }
        rows.append(row)
        print(json.dumps({"dataset": dataset, "system": "pythae", **row}), flush=True)
    return rows


def markdown(results: list[dict]) -> str:
    """One row per dataset and system: PSNR / SSIM (and test NLL for MNIST) at each mark; a later
    run of a (dataset, system) replaces an earlier one."""
    latest = {(r["dataset"], r["system"], r["minutes"]): r for r in results}
    marks = sorted({m for _, _, m in latest})
    head = "| data | system | " + " | ".join(f"{m:g} min: PSNR / SSIM / NLL" for m in marks) + " |"
    lines = [head, "|---|---|" + "---|" * len(marks)]
    for dataset, system in dict.fromkeys((d, s) for d, s, _ in latest):
        cells = []
        for mark in marks:
            r = latest.get((dataset, system, mark))
            if r is None:
                cells.append("")
                continue
            cell = f"{r['reconstruction.psnr']:.2f} dB / {r['reconstruction.ssim']:.3f}"
            iwae = f" / {r['nll.iwae_nll']:.1f}" if "nll.iwae_nll" in r else ""
            cells.append(cell + iwae + f" ({r['steps']} steps)")
        lines.append(f"| {dataset} | {system} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--marks", nargs="+", type=float, default=[2, 5, 10], help="minutes at which to score")
    parser.add_argument("--systems", nargs="+", default=["default", "old", "preset", "pythae"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--table", type=Path, nargs="+", help="print the Markdown table of these --json files")
    args = parser.parse_args()
    if args.table:
        print(markdown([r for path in args.table for r in json.loads(path.read_text())["results"]]))
        return
    torch.set_num_threads(args.threads)
    marks = sorted(args.marks)
    results = []
    for dataset in args.datasets:
        for system in args.systems:
            if system == "pythae":
                rows = pythae_system(dataset, marks)
            else:
                rows = vaekit_system(system, dataset, args.out / f"{dataset}-{system}", marks)
            results += [{"dataset": dataset, "system": system, **row} for row in rows]
    report = {"results": results, "settings": {**vars(args), "out": str(args.out), "json": str(args.json)}}
    text = json.dumps(report, indent=2, default=lambda v: None if isinstance(v, float) and math.isnan(v) else str(v))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(text)
    print(markdown(results))


if __name__ == "__main__":
    main()
