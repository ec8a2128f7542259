"""kl-f8-celeba64 fine-tuned with and without the EQ-VAE term at equal CPU time, then measured.

    python benchmarks/equivariance.py --data ../shared/data/celeba-subset --base-minutes 8 \
        --tune-minutes 4 --denoiser-seconds 90 --out benchmarks/results/equivariance

1. a base kl-f8-celeba64 model trained for --base-minutes (L1 + KL only, as the other CPU kl-f8
   benchmarks: pretrained LPIPS weights cannot be had here, a random LPIPS only slows it down);
2. two fine-tunes from it, each --tune-minutes: the same recipe ("plain"), and the kl-f8-eq preset
   ("eq", the equivariance term on half the steps);
3. each on the held-out split: PSNR, SSIM, the latent spectrum's high-frequency share, and, as a
   diffusability proxy, a small latent denoiser (epsilon prediction, 3 conv layers) trained for
   --denoiser-seconds on each model's normalised training latents, scored on the held-out latents
   at three noise levels (lower: easier to diffuse).
Writes OUT/equivariance.json and prints one Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path

import torch
from torch import nn

import vaekit
from vaekit.models.samplers import posterior_means

NOISE_LEVELS = (0.25, 0.5, 1.0)
L1_ONLY = ["likelihood.name=laplace", "likelihood.learn_scale=true"]


def train(preset: str, data: str, out: Path, minutes: float, extra: list[str]) -> Path:
    if (out / "model" / "model.safetensors").is_file():
        return out
    return vaekit.train(
        preset=preset, data=data, out=out, overrides=[*L1_ONLY, f"train.max_time={minutes * 60:.0f}", *extra]
    )


def denoiser_scores(train_z: torch.Tensor, test_z: torch.Tensor, seconds: float, seed: int = 0) -> dict:
    """Held-out epsilon-prediction MSE at each noise level of a small denoiser trained for ``seconds``."""
    mean, std = train_z.mean((0, 2, 3), keepdim=True), train_z.std((0, 2, 3), keepdim=True)
    train_z, test_z = (train_z - mean) / std, (test_z - mean) / std
    channels = train_z.shape[1]
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(channels + 1, 64, 3, padding=1), nn.SiLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.SiLU(),
        nn.Conv2d(64, channels, 3, padding=1),
    )  # fmt: skip
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    levels = torch.tensor(NOISE_LEVELS)

    def loss_at(z: torch.Tensor, sigma: torch.Tensor, generator=None) -> torch.Tensor:
        eps = torch.randn(z.shape, generator=generator)
        noisy = (z + sigma.view(-1, 1, 1, 1) * eps) / (1 + sigma.view(-1, 1, 1, 1) ** 2).sqrt()
        level = sigma.view(-1, 1, 1, 1).expand(-1, 1, *z.shape[-2:])
        return (net(torch.cat([noisy, level], 1)) - eps).square().mean((1, 2, 3))

    started, steps = time.perf_counter(), 0
    generator = torch.Generator().manual_seed(seed)
    while time.perf_counter() - started < seconds:
        index = torch.randint(len(train_z), (128,), generator=generator)
        sigma = levels[torch.randint(len(levels), (128,), generator=generator)]
        loss = loss_at(train_z[index], sigma).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        steps += 1
    scores = {"denoiser_steps": steps}
    with torch.no_grad():
        for sigma in NOISE_LEVELS:
            per = loss_at(test_z, torch.full((len(test_z),), sigma), torch.Generator().manual_seed(1))
            scores[f"denoiser_mse_sigma_{sigma:g}"] = float(per.mean())
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--base-minutes", type=float, default=8)
    parser.add_argument("--tune-minutes", type=float, default=4)
    parser.add_argument("--denoiser-seconds", type=float, default=90)
    parser.add_argument("--images", type=int, default=1200, help="held-out images scored")
    args = parser.parse_args()

    base = train("kl-f8-celeba64", args.data, args.out / "base", args.base_minutes, [])
    runs = {
        "plain": train("kl-f8-celeba64", args.data, args.out / "plain", args.tune_minutes, [f"train.init={base}"]),
        "eq": train("kl-f8-eq", args.data, args.out / "eq", args.tune_minutes, [f"train.init={base}"]),
    }
    from vaekit.api import dataset_for

    results = {}
    for name, run in runs.items():
        report = vaekit.evaluate(run, metrics=["reconstruction", "latents"], max_images=args.images)
        model = vaekit.load(run)
        train_z = posterior_means(model, dataset_for(model, split="train").images)
        test_z = posterior_means(model, dataset_for(model, split="test").images[: args.images])
        latents = report["metrics"]["latents"]
        results[name] = {
            "steps": vaekit.load(run).info.get("steps"),
            "psnr": report["metrics"]["reconstruction"]["psnr"],
            "ssim": report["metrics"]["reconstruction"]["ssim"],
            "latent_high_frequency_share": latents["latent_high_frequency_share"],
            "image_high_frequency_share": latents["image_high_frequency_share"],
            **denoiser_scores(train_z, test_z, args.denoiser_seconds),
        }
        print(name, results[name])
    results["settings"] = {**vars(args), "out": str(args.out), "date": date.today().isoformat()}
    (args.out / "equivariance.json").write_text(json.dumps(results, indent=2, default=str))
    keys = ["steps", "psnr", "ssim", "latent_high_frequency_share"] + [
        f"denoiser_mse_sigma_{s:g}" for s in NOISE_LEVELS
    ]
    print("| fine-tune | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name in runs:
        print(f"| {name} | " + " | ".join(f"{results[name][k]:.4g}" for k in keys) + " |")


if __name__ == "__main__":
    main()
