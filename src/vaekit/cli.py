"""The ``vaekit`` command: parses arguments and calls the API. Nothing here holds logic of its own."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vaekit import api
from vaekit.config import available_presets, preset_description
from vaekit.explore.grids import interleave, save_grid
from vaekit.explore.interpolation import save_gif
from vaekit.explore.sampling import dump_images, interpolation_frames, sample_images


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("vaekit: interrupted", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, OSError) as err:
        if os.environ.get("VAEKIT_DEBUG"):
            raise
        print(f"vaekit: error: {err}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vaekit", description="Train and use variational autoencoders on images.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("train", help="train a model (or resume a run)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--preset", help="a built-in setup (see `vaekit presets`)")
    source.add_argument("--config", type=Path, help="a YAML config file")
    p.add_argument("--data", help="data spec: a folder, a .zip, an IDX folder, a CelebA folder, kind:path, or shapes")
    p.add_argument("--out", type=Path, help="run directory (default runs/<preset>-<time>)")
    p.add_argument("--resume", type=Path, metavar="RUN", help="continue the run in RUN")
    p.add_argument(
        "--set",
        dest="overrides",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="dotted config overrides, e.g. train.max_steps=2000 train.precision=bf16",
    )
    p.set_defaults(func=_train)

    p = commands.add_parser("reconstruct", help="reconstruct images with a trained model")
    p.add_argument("run", type=Path)
    p.add_argument("images", type=Path, nargs="+")
    p.add_argument("-o", "--output", type=Path, default=Path("reconstructions.png"))
    p.set_defaults(func=_reconstruct)

    p = commands.add_parser("sample", help="draw random samples from a trained model")
    p.add_argument("run", type=Path)
    p.add_argument("-n", type=int, default=64)
    p.add_argument("-o", "--output", type=Path, default=Path("samples.png"))
    p.add_argument("--dump", type=Path, metavar="DIR", help="also write each sample as its own PNG into DIR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.set_defaults(func=_sample)

    p = commands.add_parser("interpolate", help="a GIF through latent space between two images or random points")
    p.add_argument("run", type=Path)
    p.add_argument("images", type=Path, nargs="*", metavar="IMAGE", help="IMAGE_A IMAGE_B (default: random latents)")
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--mode", choices=["lerp", "slerp"], default="slerp")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", type=Path, default=Path("interpolation.gif"))
    p.set_defaults(func=_interpolate)

    p = commands.add_parser("presets", help="list the built-in presets")
    p.set_defaults(func=_presets)

    p = commands.add_parser("demo", help="train on the built-in shapes for ~2 minutes and write a complete run")
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=_demo)
    return parser


def _train(args: argparse.Namespace) -> None:
    run = api.train(
        args.config, preset=args.preset, data=args.data, out=args.out, resume=args.resume, overrides=args.overrides
    )
    print(f"run: {run}")


def _reconstruct(args: argparse.Namespace) -> None:
    model = api.load(args.run)
    images = api.load_images(args.images, model.config)
    recon = model.reconstruct(images).cpu()
    per_row = min(len(images), 8)
    print(f"wrote {save_grid(interleave(images, recon, per_row), args.output, per_row)}")


def _sample(args: argparse.Namespace) -> None:
    model = api.load(args.run)
    images = sample_images(model, args.n, seed=args.seed, temperature=args.temperature)
    print(f"wrote {save_grid(images, args.output)}")
    if args.dump:
        print(f"wrote {len(dump_images(images, args.dump))} images to {args.dump}")


def _interpolate(args: argparse.Namespace) -> None:
    if len(args.images) not in (0, 2):
        raise ValueError("interpolate takes two images (A and B) or none (random latents)")
    model = api.load(args.run)
    images = api.load_images(args.images, model.config) if args.images else None
    frames = interpolation_frames(model, images, steps=args.steps, mode=args.mode, seed=args.seed)
    scale = max(1, 128 // model.config.data.image_size)
    print(f"wrote {save_gif(frames, args.output, scale=scale)}")


def _presets(args: argparse.Namespace) -> None:
    for name in available_presets():
        print(f"{name:22s} {preset_description(name)}")


def _demo(args: argparse.Namespace) -> None:
    run = api.train(preset="shapes-demo", out=args.out, overrides=args.overrides)
    model = api.load(run)
    gif = save_gif(interpolation_frames(model, steps=24, seed=1), run / "interpolation.gif", scale=4)
    print(
        f"\ndemo run written to {run}/\n"
        f"  reconstructions  {run}/images/recon-final.png\n"
        f"  samples          {run}/images/samples-final.png\n"
        f"  interpolation    {gif}\n"
        f"  curves           {run}/curves.png\n"
        f"  metrics          {run}/metrics.csv\n"
        f"try: vaekit sample {run} -n 64 -o samples.png"
    )
