"""The ``vaekit`` command: parses arguments and calls the API. Nothing here holds logic of its own."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

import torch

from vaekit import __version__, api
from vaekit.config import DataConfig, available_presets, preset_description
from vaekit.data import load_dataset
from vaekit.evaluation.report import DEFAULT_METRICS, METRICS, EvaluationSettings, evaluate, write_report
from vaekit.explore.attributes import (
    AttributeVectors,
    compute_attribute_vectors,
    edit_images,
    latent_arithmetic,
    parse_strengths,
    parse_sweep,
    sweep_images,
)
from vaekit.explore.grids import interleave, save_grid
from vaekit.explore.interpolation import save_gif
from vaekit.explore.latent_map import latent_map
from vaekit.explore.progress import progress_gif
from vaekit.explore.sampling import dump_images, interpolation_frames, manifold_frames, sample_images
from vaekit.features.classifier import save_classifier, train_classifier


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_join_negative_values(sys.argv[1:] if argv is None else argv))
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


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--sweep -2:2:9`` -> ``--sweep=-2:2:9`` (argparse would read ``-2:2:9`` as an option)."""
    joined, items = [], iter(argv)
    for item in items:
        joined.append(f"{item}={next(items, '')}" if item == "--sweep" else item)
    return joined


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vaekit", description="Train and use variational autoencoders on images.")
    parser.add_argument("--version", action="version", version=f"vaekit {__version__}")
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
    p.add_argument("--grid", metavar="RxC", help="animate a grid of random latents to another (variance-preserving)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", type=Path, default=Path("interpolation.gif"))
    p.set_defaults(func=_interpolate)

    p = commands.add_parser("evaluate", help="metrics of a trained model on held-out data, as JSON + Markdown")
    p.add_argument("run", type=Path)
    p.add_argument("--data", help="data spec (default: the run's own data source)")
    p.add_argument("--split", default="test", choices=["test", "val", "train"])
    p.add_argument("--metrics", default=",".join(DEFAULT_METRICS), help=f"comma list of: {', '.join(METRICS)}")
    p.add_argument("--max-images", type=int, help="use only the first N held-out images")
    p.add_argument("--k", type=int, default=100, help="importance samples for the IWAE NLL")
    p.add_argument("-n", "--samples", type=int, default=10000, help="generated images for FID / KID")
    p.add_argument("--features", default="inception", help="'inception' or a classifier from train-classifier")
    p.add_argument("--inception-weights", help="path to pt_inception-2015-12-05-6726825d.pth")
    p.add_argument("--lpips", choices=["vgg", "alex"], default="vgg", help="LPIPS backbone")
    p.add_argument("--lpips-backbone-weights", help="path to the torchvision VGG16 / AlexNet weights")
    p.add_argument("--lpips-weights", help="path to the LPIPS v0.1 linear weights (vgg.pth / alex.pth)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", type=Path, help="JSON report (default RUN/evaluation-<split>.json)")
    p.set_defaults(func=_evaluate)

    p = commands.add_parser("progress", help="a GIF of the per-epoch grids of a run")
    p.add_argument("run", type=Path)
    p.add_argument("--kind", choices=["samples", "recon"], default="samples")
    p.add_argument("-o", "--output", type=Path, default=Path("progress.gif"))
    p.set_defaults(func=_progress)

    p = commands.add_parser("train-classifier", help="train a small classifier to use as FID/KID features")
    p.add_argument("--data", required=True, help="a labelled source (e.g. an MNIST IDX folder)")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("-o", "--output", type=Path, default=Path("classifier.safetensors"))
    p.set_defaults(func=_train_classifier)

    p = commands.add_parser("attributes", help="attribute vectors (mean latent difference) from labelled data")
    p.add_argument("run", type=Path)
    p.add_argument("--data", help="data spec (default: the run's own data source)")
    p.add_argument("--labels", help="CSV of filename,attr1,... (for image folders without CelebA labels)")
    p.add_argument("--attrs", help="comma list of attributes (default: all)")
    p.add_argument("-o", "--output", type=Path, help="folder for the vectors (default RUN/model)")
    p.set_defaults(func=_attributes)

    p = commands.add_parser("edit", help="edit an image along attribute vectors")
    p.add_argument("run", type=Path)
    p.add_argument("image", type=Path)
    p.add_argument("--attr", action="append", required=True, metavar="NAME=STRENGTH", help="repeatable")
    p.add_argument("--sweep", metavar="START:STOP:COUNT", help="a strip over strengths of one --attr NAME")
    p.add_argument("-o", "--output", type=Path, default=Path("edited.png"))
    p.set_defaults(func=_edit)

    p = commands.add_parser("arithmetic", help="decode z_A - z_B + z_C")
    p.add_argument("run", type=Path)
    p.add_argument("images", type=Path, nargs=3, metavar="IMAGE")
    p.add_argument("-o", "--output", type=Path, default=Path("arithmetic.png"))
    p.set_defaults(func=_arithmetic)

    p = commands.add_parser("latent-map", help="2-D map of latent means with image thumbnails")
    p.add_argument("run", type=Path)
    p.add_argument("--data", help="data spec (default: the run's own data source)")
    p.add_argument("--split", default="train", choices=["train", "val", "test"])
    p.add_argument("--method", choices=["tsne", "pca", "umap"], default="tsne")
    p.add_argument("--max-points", type=int, default=500)
    p.add_argument("-o", "--output", type=Path, default=Path("latent-map.png"))
    p.set_defaults(func=_latent_map)

    p = commands.add_parser("serve", help="a local web page to explore a trained model")
    p.add_argument("run", type=Path)
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_serve)

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


def _serve(args: argparse.Namespace) -> None:
    from vaekit.serve import serve  # the web stack loads only for this command

    serve(args.run, args.host, args.port, args.device)


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
    if args.grid:
        rows, _, cols = args.grid.lower().partition("x")
        if not (rows.isdigit() and cols.isdigit()):
            raise ValueError(f"--grid takes ROWSxCOLS, e.g. 8x8, not {args.grid!r}")
        if args.images:
            raise ValueError("--grid animates random latents; it takes no images")
        frames = manifold_frames(model, int(rows), int(cols), steps=args.steps, seed=args.seed)
        print(f"wrote {save_gif(frames, args.output, frame_ms=60, hold_ms=400)}")
        return
    images = api.load_images(args.images, model.config) if args.images else None
    frames = interpolation_frames(model, images, steps=args.steps, mode=args.mode, seed=args.seed)
    scale = max(1, 128 // model.config.data.image_size)
    print(f"wrote {save_gif(frames, args.output, scale=scale)}")


def _run_and_data(args: argparse.Namespace, split: str):
    """The run's model and a split of its data (or of ``--data`` / ``--labels`` when given)."""
    model = api.load(args.run)
    config = model.config.data
    config = replace(
        config,
        source=getattr(args, "data", None) or config.source,
        labels=getattr(args, "labels", None) or config.labels,
    )
    return model, load_dataset(config).split(split, config.val_fraction, config.seed)


def _evaluate(args: argparse.Namespace) -> None:
    model, held_out = _run_and_data(args, args.split)
    settings = EvaluationSettings(
        split=args.split,
        metrics=[m.strip() for m in args.metrics.split(",") if m.strip()],
        max_images=args.max_images,
        seed=args.seed,
        iwae_k=args.k,
        n_samples=args.samples,
        features=args.features,
        inception_weights=args.inception_weights,
        lpips_backbone=args.lpips,
        lpips_backbone_weights=args.lpips_backbone_weights,
        lpips_linear_weights=args.lpips_weights,
    )
    report = evaluate(model, held_out, settings, run=str(args.run))
    json_path, markdown = write_report(report, args.output or Path(args.run) / f"evaluation-{args.split}.json")
    print(markdown.read_text().split("Settings:")[0].rstrip())
    print(f"\nwrote {json_path} and {markdown}")


def _progress(args: argparse.Namespace) -> None:
    print(f"wrote {progress_gif(args.run, args.output, args.kind)}")


def _train_classifier(args: argparse.Namespace) -> None:
    data = load_dataset(DataConfig(source=args.data, image_size=args.image_size, crop="none"))
    model, accuracy = train_classifier(data.split("train"), data.split("test"), epochs=args.epochs)
    path = save_classifier(model, args.output)
    print(f"wrote {path}" + (f" (test accuracy {accuracy:.4f})" if accuracy is not None else ""))


def _attributes(args: argparse.Namespace) -> None:
    model, data = _run_and_data(args, "train")
    names = [a.strip() for a in args.attrs.split(",")] if args.attrs else None
    vectors = compute_attribute_vectors(model, data, names)
    folder = args.output or api.model_folder(args.run)
    vectors_file, counts_file = vectors.save(folder)
    for name, count in vectors.counts.items():
        state = "" if name in vectors.vectors else "  (no vector: one side is empty)"
        print(f"{name:22s} with {count['with']:6d}  without {count['without']:6d}{state}")
    print(f"wrote {vectors_file} and {counts_file}")


def _edit(args: argparse.Namespace) -> None:
    model = api.load(args.run)
    vectors = AttributeVectors.load(api.model_folder(args.run))
    (image,) = api.load_images([args.image], model.config)
    if args.sweep:
        if len(args.attr) != 1 or "=" in args.attr[0]:
            raise ValueError("--sweep takes exactly one --attr NAME (no strength)")
        strengths = parse_sweep(args.sweep)
        strip = torch.cat([image[None], sweep_images(model, image, vectors, args.attr[0], strengths)])
        print(f"wrote {save_grid(strip, args.output, nrow=len(strip))}  (original, then strengths {strengths})")
        return
    edited = edit_images(model, image[None], vectors, parse_strengths(args.attr))
    reconstruction = model.reconstruct(image[None]).cpu()
    print(
        f"wrote {save_grid(torch.cat([image[None], reconstruction, edited]), args.output, nrow=3)}"
        "  (original, reconstruction, edited)"
    )


def _arithmetic(args: argparse.Namespace) -> None:
    model = api.load(args.run)
    a, b, c = api.load_images(args.images, model.config)
    result = latent_arithmetic(model, a, b, c)
    print(f"wrote {save_grid(torch.cat([torch.stack([a, b, c]), result]), args.output, nrow=4)}  (A, B, C, A - B + C)")


def _latent_map(args: argparse.Namespace) -> None:
    model, data = _run_and_data(args, args.split)
    print(f"wrote {latent_map(model, data, args.output, method=args.method, max_points=args.max_points)}")


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
