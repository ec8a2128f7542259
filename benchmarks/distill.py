"""A distilled preview decoder beside one trained without the teacher's decoder, at equal CPU time.

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/distill.py --data ../shared/data/celeba-subset \
        --teacher benchmarks/results/quantizers/kl --minutes 4 --out benchmarks/results/distill

The teacher is a KL autoencoder trained here (``--teacher RUN``; without it one is trained for
``--teacher-minutes`` with kl-f8-celeba64's network at a CPU size). Two students of one size
(diffusers' ``AutoencoderTiny``, TAESD's design, ``--width`` channels per block) train for ``--minutes``
each on one thread with ``vaekit distill``:

- ``distilled``: its decoder reproduces the teacher's decodes of the teacher's latents (TAESD's recipe);
- ``scratch``: its decoder decodes the teacher's latents into the images themselves (what training a
  decoder for those latents does without the teacher's decoder; ``objective.distill.target: images``).

Both encoders regress the teacher's latents. On held-out images: PSNR / SSIM of each student's
decodes of the teacher's latents against the teacher's decodes (how faithful a preview is) and
against the images; the decode time of a batch of 64 latents, teacher / student. LPIPS needs weights
that cannot be downloaded here, so it is not measured. ``--tiny``: seconds, the smoke test.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import torch
from quantizers import NETWORK  # this folder's quantizers benchmark (the script's folder is on sys.path)

import vaekit
from vaekit.evaluation.image_quality import psnr, ssim

TEACHER = NETWORK  # the KL autoencoder of benchmarks/quantizers.py, trained the same way
TINY_TEACHER = {"data.limit": 96, "model.autoencoder_kl.block_out_channels": [8, 8, 8, 8],
                "model.autoencoder_kl.norm_num_groups": 8}  # fmt: skip
STUDENTS = {"distilled": "teacher", "scratch": "images"}  # objective.distill.target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--teacher", type=Path, help="a trained KL autoencoder run (default: train one)")
    parser.add_argument("--teacher-minutes", type=float, default=6.0)
    parser.add_argument("--minutes", type=float, default=4.0, help="training budget of each student")
    parser.add_argument("--width", type=int, default=16, help="the students' channels per block (TAESD: 64)")
    parser.add_argument("--images", type=int, default=500, help="held-out images scored")
    parser.add_argument("--tiny", action="store_true", help="seconds, not minutes: the smoke test")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    teacher = args.teacher or train_teacher(args)
    results = {name: measure(args, teacher, name, target) for name, target in STUDENTS.items()}
    summary = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, 1 torch thread",
        "teacher": str(teacher),
        "minutes_per_student": args.minutes,
        "results": results,
    }
    (args.out / "distill.json").write_text(json.dumps(summary, indent=2, default=float))
    print_table(results, args.minutes)


def train_teacher(args: argparse.Namespace) -> Path:
    run = args.out / "teacher"
    if not (run / "model" / "model.safetensors").is_file():
        settings = {**TEACHER, **(TINY_TEACHER if args.tiny else {})}
        budget = ["train.max_steps=2"] if args.tiny else [f"train.max_time={args.teacher_minutes * 60:.0f}"]
        overrides = [f"{key}={json.dumps(value)}" for key, value in settings.items()] + budget
        vaekit.train(preset="kl-f8-celeba64", data=args.data, out=run, overrides=overrides, overwrite=True)
    return run


def measure(args: argparse.Namespace, teacher_run: Path, name: str, target: str) -> dict:
    run = args.out / name
    widths = [args.width] * 4
    settings = {
        "objective.distill.target": target,
        "model.diffusers.config.encoder_block_out_channels": widths,
        "model.diffusers.config.decoder_block_out_channels": widths,
        "train.threads": 1,
        "train.fit_sampler": False,  # a preview decoder draws the teacher's latents
        **({"data.limit": 96} if args.tiny else {}),
    }
    budget = ["train.max_steps=2"] if args.tiny else [f"train.max_time={args.minutes * 60:.0f}"]
    if not (run / "model" / "model.safetensors").is_file():
        overrides = [f"{key}={json.dumps(value)}" for key, value in settings.items()] + budget
        vaekit.distill(teacher_run, data=args.data, out=run, overrides=overrides, overwrite=True)
    teacher, student = vaekit.load(teacher_run), vaekit.load(run)
    images = held_out(teacher, 16 if args.tiny else args.images)
    scores = {"teacher": [], "images": [], "roundtrip": []}
    with torch.no_grad():
        for batch in images.split(64):
            latent = teacher.embed(batch)
            reference, preview = teacher.to_image(latent), student.to_image(latent)
            roundtrip = student.reconstruct(batch)
            for key, against, ours in (("teacher", reference, preview), ("images", batch, preview),
                                       ("roundtrip", batch, roundtrip)):  # fmt: skip
                scores[key].append(torch.stack([psnr(ours, against).mean(), ssim(ours, against).mean()]) * len(batch))
    totals = {key: (torch.stack(value).sum(0) / len(images)).tolist() for key, value in scores.items()}
    latents = teacher.embed(images[:64])
    teacher_s, student_s = decode_seconds(teacher, latents), decode_seconds(student, latents)
    steps = sum(1 for line in (run / "metrics.csv").open() if ",train," in line)
    return {
        "logged_rows": steps,
        "psnr_vs_teacher": totals["teacher"][0],
        "ssim_vs_teacher": totals["teacher"][1],
        "psnr_vs_images": totals["images"][0],
        "ssim_vs_images": totals["images"][1],
        "student_roundtrip_psnr": totals["roundtrip"][0],
        "decode_s_teacher": teacher_s,
        "decode_s_student": student_s,
        "decode_speedup": teacher_s / student_s,
        "decoder_parameters": sum(p.numel() for p in student.decoder.parameters()),
        "teacher_decoder_parameters": sum(p.numel() for p in teacher.decoder.parameters()),
    }


def held_out(model, n: int) -> torch.Tensor:
    data = vaekit.api.dataset_for(model, split="val")
    return torch.from_numpy(data.images[: min(n, len(data))]).float() / 255


def decode_seconds(model, latents: torch.Tensor, repeats: int = 5) -> float:
    best = float("inf")
    with torch.no_grad():
        model.decode(latents)  # warm-up
        for _ in range(repeats):
            started = time.perf_counter()
            model.decode(latents)
            best = min(best, time.perf_counter() - started)
    return best


def print_table(results: dict, minutes: float) -> None:
    print(f"| {minutes:g} min, 1 thread | PSNR / SSIM vs the teacher's decodes | vs the images | "
          "decode of 64 latents (teacher / student) | decoder parameters |")  # fmt: skip
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['psnr_vs_teacher']:.2f} dB / {r['ssim_vs_teacher']:.3f} | "
              f"{r['psnr_vs_images']:.2f} dB / {r['ssim_vs_images']:.3f} | "
              f"{r['decode_s_teacher'] * 1000:.0f} / {r['decode_s_student'] * 1000:.0f} ms "
              f"({r['decode_speedup']:.1f}x) | {r['decoder_parameters']:,} |")  # fmt: skip


if __name__ == "__main__":
    main()
