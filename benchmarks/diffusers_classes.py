"""Every diffusers autoencoder class vaekit trains (model.arch: diffusers), on real images.

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/diffusers_classes.py --data ../shared/data/celeba-subset \
        --out benchmarks/results/diffusers-classes

For each class, a small config of its own design (random weights: pretrained ones cannot be
downloaded here) on CelebA at 64 px, one thread: ``--steps`` training steps; the same run stopped
half-way and resumed (bit-identical weights?); a decoder-only fine-tune from it (every encoder weight
unchanged?); export to the same class, read back by diffusers' own ``from_pretrained`` (decode max
difference); the seconds per step and the held-out PSNR after the steps. ``--tiny``: the smoke test.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import torch
from safetensors.torch import load_file

import vaekit
from vaekit.export import export_diffusers
from vaekit.models.diffusers_adapter import CLASSES

CONFIGS = {  # small members of each family, at 64 px
    "AutoencoderKLFlux2": {"block_out_channels": [32, 64, 64], "layers_per_block": 1, "latent_channels": 8,
                           "norm_num_groups": 16, "down_block_types": ["DownEncoderBlock2D"] * 3,
                           "up_block_types": ["UpDecoderBlock2D"] * 3},
    "AutoencoderKLQwenImage": {"base_dim": 32, "z_dim": 8, "dim_mult": [1, 2, 2], "num_res_blocks": 1,
                               "temperal_downsample": [False, False], "latents_mean": [0.0] * 8,
                               "latents_std": [1.0] * 8},
    "AutoencoderDC": {"latent_channels": 16, "attention_head_dim": 8,
                      "encoder_block_types": ["ResBlock", "ResBlock", "EfficientViTBlock"],
                      "decoder_block_types": ["ResBlock", "ResBlock", "EfficientViTBlock"],
                      "encoder_block_out_channels": [32, 64, 64], "decoder_block_out_channels": [32, 64, 64],
                      "encoder_layers_per_block": [1, 1, 1], "decoder_layers_per_block": [1, 1, 1],
                      "encoder_qkv_multiscales": [[], [], [5]], "decoder_qkv_multiscales": [[], [], [5]]},
    "AutoencoderTiny": {"encoder_block_out_channels": [32, 32, 32], "decoder_block_out_channels": [32, 32, 32],
                        "num_encoder_blocks": [1, 2, 2], "num_decoder_blocks": [2, 2, 1], "latent_channels": 4},
    "AutoencoderRAE": {"encoder_type": "dinov2", "encoder_hidden_size": 64, "encoder_patch_size": 8,
                       "encoder_num_hidden_layers": 2, "decoder_hidden_size": 128, "decoder_num_hidden_layers": 2,
                       "decoder_num_attention_heads": 4, "decoder_intermediate_size": 256, "patch_size": 8,
                       "encoder_input_size": 64, "noise_tau": 0.8},
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--tiny", action="store_true", help="2 steps on 32 images: the smoke test")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    steps = 2 if args.tiny else args.steps
    results = {name: measure(args, name, steps) for name in CONFIGS}
    summary = {"date": date.today().isoformat(), "machine": f"{platform.machine()}, 1 torch thread",
               "steps": steps, "results": results}  # fmt: skip
    (args.out / "diffusers-classes.json").write_text(json.dumps(summary, indent=2, default=float))
    print(
        f"| class ({steps} steps, 64 px CelebA, 1 thread) | parameters | s / step | held-out PSNR | "
        "resume bit-identical | decoder-only: encoder unchanged | export -> from_pretrained decode max diff |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['parameters']:,} | {r['seconds_per_step']:.2f} | {r['psnr']:.2f} dB | "
            f"{r['resume_identical']} | {r['encoder_unchanged']} | {r['decode_max_difference']:g} |"
        )


def measure(args: argparse.Namespace, name: str, steps: int) -> dict:
    spec = CLASSES[name]
    settings = {
        "model.arch": "diffusers", "model.diffusers.class_name": name, "model.diffusers.config": CONFIGS[name],
        "model.latent": spec.latent, "likelihood.name": "laplace", "likelihood.output": spec.output,
        "likelihood.learn_scale": False, "likelihood.scale": 0.1, "data.image_size": 64, "train.batch_size": 16,
        "train.threads": 1, "train.checkpoint_every": max(1, steps // 2), "train.fit_sampler": False,
        "data.limit": 64 if args.tiny else 2000,
    }  # fmt: skip
    overrides = [f"{key}={json.dumps(value)}" for key, value in settings.items()]
    folder = args.out / name
    started = time.perf_counter()
    straight = vaekit.train(data=args.data, out=folder / "straight", overrides=[*overrides, f"train.max_steps={steps}"],
                            overwrite=True)  # fmt: skip
    seconds = (time.perf_counter() - started) / steps
    half = vaekit.train(data=args.data, out=folder / "half", overrides=[*overrides, f"train.max_steps={steps // 2}"],
                        overwrite=True)  # fmt: skip
    resumed = vaekit.train(resume=half, overrides=[f"train.max_steps={steps}"])
    a, b = (load_file(str(run / "model" / "model.safetensors")) for run in (straight, resumed))
    identical = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    tune = [*overrides, "train.max_steps=2", f"train.init={straight}", "train.trainable=decoder"]
    tuned = vaekit.train(data=args.data, out=folder / "decoder-only", overrides=tune, overwrite=True)
    c = load_file(str(tuned / "model" / "model.safetensors"))
    unchanged = all(torch.equal(a[k], c[k]) for k in a if k.startswith("encoder."))
    model = vaekit.load(straight)
    export_diffusers(model, folder / "exported")
    import diffusers

    theirs = getattr(diffusers, name).from_pretrained(folder / "exported").eval()
    z = torch.randn(4, *model.latent_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model.decode(z)
        decoded = theirs.decode(z.unsqueeze(2) if spec.frames else z).sample
    difference = (ours - (decoded.squeeze(2) if spec.frames else decoded)).abs().max().item()
    report = vaekit.evaluate(straight, metrics=["reconstruction"], max_images=16 if args.tiny else 200)
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds_per_step": seconds,
        "psnr": report["metrics"]["reconstruction"]["psnr"],
        "resume_identical": identical,
        "encoder_unchanged": unchanged,
        "decode_max_difference": difference,
    }


if __name__ == "__main__":
    main()
