"""The ``vaekit`` command: parses arguments and calls the API. Nothing here holds logic of its own.

Exit codes: 0 done; 1 a runtime error (one line); 2 a usage or config error (one line);
130 stopped by Ctrl-C, 143 stopped by SIGTERM (after a checkpoint: continue with --resume).
Heavy modules are imported inside the commands, so ``vaekit --help`` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vaekit import __version__

DEBUG_HINT = "VAEKIT_DEBUG=1 shows the traceback"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_join_negative_values(sys.argv[1:] if argv is None else argv))
    if getattr(args, "trust_code", False):
        from vaekit.plugins import allow_code

        allow_code()
    try:
        return args.func(args) or 0
    except BaseException as err:  # every failure is one line with the right exit code
        if os.environ.get("VAEKIT_DEBUG") or isinstance(err, SystemExit):
            raise
        code, message = describe_error(err)
        print(f"vaekit: {message}", file=sys.stderr)
        return code


def describe_error(err: BaseException) -> tuple[int, str]:
    """(exit code, one line) for any exception reaching the command line."""
    from vaekit.config import ConfigError
    from vaekit.training.trainer import TrainingStopped

    if isinstance(err, TrainingStopped):
        return err.exit_code, str(err)
    if isinstance(err, KeyboardInterrupt):
        return 130, "interrupted"
    if isinstance(err, ConfigError):
        return 2, f"error: {err}"
    if isinstance(err, MemoryError):
        return 1, "error: out of memory (try a smaller train.batch_size or data.image_size)"
    if isinstance(err, ValueError | RuntimeError | OSError | LookupError | TypeError):
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return 1, f"error: {first}"
    return 1, f"unexpected error: {type(err).__name__}: {str(err)[:300]} ({DEBUG_HINT})"


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--sweep -2:2:9`` -> ``--sweep=-2:2:9`` (argparse would read ``-2:2:9`` as an option)."""
    joined, items = [], iter(argv)
    for item in items:
        joined.append(f"{item}={next(items, '')}" if item == "--sweep" else item)
    return joined


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text}")
    return value


def port_number(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, not {text}")
    return value


def finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows every default."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vaekit",
        description="Train and use variational autoencoders on images.",
        epilog="exit codes: 0 ok, 1 runtime error, 2 usage/config error, 130 Ctrl-C, 143 SIGTERM",
    )
    parser.add_argument("--version", action="version", version=f"vaekit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    trust = argparse.ArgumentParser(add_help=False)
    trust.add_argument(
        "--trust-code",
        action="store_true",
        help="allow importing the code a config names (package.module:Name plug-ins, user networks)",
    )

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, description=help, parents=[trust], formatter_class=_Formatter)

    p = command("train", "train a model (or resume a run)")
    p.add_argument("--preset", help="a built-in setup (see `vaekit presets`)")
    p.add_argument("--config", type=Path, help="a YAML config file (its keys override the preset's)")
    p.add_argument("--data", help="a folder, a .zip, an IDX folder, a CelebA folder, kind:path, or shapes")
    p.add_argument("--out", type=Path, help="run directory (default runs/<preset>-<time>)")
    p.add_argument(
        "--resume", type=Path, metavar="RUN", help="continue the run in RUN (with --out: as a new run, RUN untouched)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument(
        "--init",
        metavar="PATH_OR_HUB_ID",
        help="start from pretrained weights: a vaekit run / model folder or a diffusers VAE folder (its architecture)",
    )
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

    p = command("reconstruct", "reconstruct images with a trained model")
    p.add_argument("run", type=Path, help="run directory, model folder or Hub id")
    p.add_argument("images", type=Path, nargs="+", help="image files")
    p.add_argument("-o", "--output", type=Path, default=Path("reconstructions.png"), help="grid PNG to write")
    p.add_argument(
        "--full-size",
        action="store_true",
        help="reconstruct each image at its own resolution in overlapping tiles (one PNG per image: OUTPUT-N.png)",
    )
    p.set_defaults(func=_reconstruct)

    p = command("sample", "draw random samples from a trained model")
    p.add_argument("run", type=Path, help="run directory, model folder or Hub id")
    p.add_argument("-n", type=positive_int, default=64, help="number of samples")
    p.add_argument("-o", "--output", type=Path, default=Path("samples.png"), help="grid PNG to write")
    p.add_argument("--dump", type=Path, metavar="DIR", help="also write each sample as its own PNG into DIR")
    p.add_argument("--seed", type=int, default=0, help="random seed of the latents")
    p.add_argument("--temperature", type=finite_float, default=1.0, help="scale of the prior samples")
    p.set_defaults(func=_sample)

    p = command("interpolate", "a GIF through latent space between two images or random points")
    p.add_argument("run", type=Path, help="run directory, model folder or Hub id")
    p.add_argument("images", type=Path, nargs="*", metavar="IMAGE", help="IMAGE_A IMAGE_B (default: random latents)")
    p.add_argument("--steps", type=positive_int, default=16, help="frames from A to B")
    p.add_argument("--mode", choices=["lerp", "slerp"], default="slerp", help="path through latent space")
    p.add_argument("--grid", metavar="RxC", help="animate a grid of random latents to another (variance-preserving)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the latents")
    p.add_argument("-o", "--output", type=Path, default=Path("interpolation.gif"), help="GIF to write")
    p.set_defaults(func=_interpolate)

    p = command("evaluate", "metrics of a trained model on held-out data, as JSON + Markdown")
    p.add_argument("run", type=Path, help="run directory or model folder")
    p.add_argument("--data", help="data spec (default: the run's own data source)")
    p.add_argument("--split", default="test", choices=["test", "val", "train"], help="which split to evaluate on")
    p.add_argument("--metrics", default="elbo,reconstruction,nll,latents,speed", help="comma list of: " + _METRICS)
    p.add_argument("--max-images", type=positive_int, help="use only the first N held-out images")
    p.add_argument("--k", type=positive_int, default=100, help="importance samples for the IWAE NLL")
    p.add_argument("-n", "--samples", type=positive_int, default=10000, help="generated images for FID / KID")
    p.add_argument("--features", default="inception", help="'inception' or a classifier from train-classifier")
    p.add_argument("--inception-weights", help="path to pt_inception-2015-12-05-6726825d.pth")
    p.add_argument("--lpips", choices=["vgg", "alex"], default="vgg", help="LPIPS backbone")
    p.add_argument("--lpips-backbone-weights", help="path to the torchvision VGG16 / AlexNet weights")
    p.add_argument("--lpips-weights", help="path to the LPIPS v0.1 linear weights (vgg.pth / alex.pth)")
    p.add_argument("--seed", type=int, default=0, help="random seed of samples and noise")
    p.add_argument("-o", "--output", type=Path, help="JSON report (default RUN/evaluation-<split>.json)")
    p.set_defaults(func=_evaluate)

    p = command("progress", "a GIF of the per-epoch grids of a run")
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--kind", choices=["samples", "recon"], default="samples", help="which grids")
    p.add_argument("-o", "--output", type=Path, default=Path("progress.gif"), help="GIF to write")
    p.set_defaults(func=_progress)

    p = command("train-classifier", "train a small classifier to use as FID/KID features")
    p.add_argument("--data", required=True, help="a labelled source (e.g. an MNIST IDX folder)")
    p.add_argument("--image-size", type=positive_int, default=28, help="image side in pixels")
    p.add_argument("--epochs", type=positive_int, default=3, help="training epochs")
    p.add_argument("-o", "--output", type=Path, default=Path("classifier.safetensors"), help="weights file")
    p.set_defaults(func=_train_classifier)

    p = command("attributes", "attribute vectors (mean latent difference) from labelled data")
    p.add_argument("run", type=Path, help="run directory or model folder")
    p.add_argument("--data", help="data spec (default: the run's own data source)")
    p.add_argument("--labels", help="CSV of filename,attr1,... (for image folders without CelebA labels)")
    p.add_argument("--attrs", help="comma list of attributes (default: all)")
    p.add_argument("-o", "--output", type=Path, help="folder for the vectors (default RUN/model)")
    p.set_defaults(func=_attributes)

    p = command("edit", "edit an image along attribute vectors")
    p.add_argument("run", type=Path, help="run directory or model folder (with attribute vectors)")
    p.add_argument("image", type=Path, help="image file")
    p.add_argument("--attr", action="append", required=True, metavar="NAME=STRENGTH", help="repeatable")
    p.add_argument("--sweep", metavar="START:STOP:COUNT", help="a strip over strengths of one --attr NAME")
    p.add_argument("-o", "--output", type=Path, default=Path("edited.png"), help="PNG to write")
    p.set_defaults(func=_edit)

    p = command("arithmetic", "decode z_A - z_B + z_C")
    p.add_argument("run", type=Path, help="run directory or model folder")
    p.add_argument("images", type=Path, nargs=3, metavar="IMAGE", help="A B C")
    p.add_argument("-o", "--output", type=Path, default=Path("arithmetic.png"), help="PNG to write")
    p.set_defaults(func=_arithmetic)

    p = command("latent-map", "2-D map of latent means with image thumbnails")
    p.add_argument("run", type=Path, help="run directory or model folder")
    p.add_argument("--data", help="data spec (default: the run's own data source)")
    p.add_argument("--split", default="train", choices=["train", "val", "test"], help="which split to map")
    p.add_argument("--method", choices=["tsne", "pca", "umap"], default="tsne", help="projection to 2-D")
    p.add_argument("--max-points", type=positive_int, default=500, help="images on the map")
    p.add_argument("-o", "--output", type=Path, default=Path("latent-map.png"), help="PNG to write")
    p.set_defaults(func=_latent_map)

    p = command("serve", "a local web page to explore a trained model")
    p.add_argument("run", type=Path, help="run directory or model folder")
    p.add_argument("--port", type=port_number, default=8000, help="TCP port")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)")
    p.add_argument("--device", default="cpu", help="torch device for the model")
    p.add_argument(
        "--allow-host", action="append", default=[], metavar="NAME", help="also answer to this Host name (repeatable)"
    )
    p.set_defaults(func=_serve)

    p = command("info", "what a run or model folder holds: architecture, size, data, steps, metrics, versions")
    p.add_argument("run", help="run directory, model folder or Hub id")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_info)

    p = command("config", "print a full resolved config as YAML (that --config takes back)")
    p.add_argument("run", nargs="?", type=Path, help="a run directory (or use --preset)")
    p.add_argument("--preset", help="a built-in preset")
    p.add_argument(
        "--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="config overrides"
    )
    p.set_defaults(func=_config)

    p = command("export", "export a model's encoder and decoder (ONNX or TorchScript)")
    p.add_argument("run", help="run directory, model folder or Hub id")
    p.add_argument(
        "--format",
        choices=["onnx", "torchscript", "diffusers"],
        default="onnx",
        help="file format (diffusers: KL autoencoders)",
    )
    p.add_argument("-o", "--output", type=Path, default=Path("export"), help="folder to write")
    p.set_defaults(func=_export)

    p = command("push", "upload a run's model folder to the Hugging Face Hub")
    p.add_argument("run", type=Path, help="run directory or model folder")
    p.add_argument("repo_id", help="owner/name on the Hub")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.set_defaults(func=_push)

    p = command("presets", "list the built-in presets")
    p.set_defaults(func=_presets)

    p = command("demo", "train on the built-in shapes for ~2 minutes and write a complete run")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="run directory (replaced if it exists)")
    p.add_argument(
        "--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="config overrides"
    )
    p.set_defaults(func=_demo)
    return parser


_METRICS = "elbo, reconstruction, lpips, fid, kid, nll, latents, speed"


def _train(args: argparse.Namespace) -> None:
    from vaekit import api

    run = api.train(
        args.config,
        preset=args.preset,
        data=args.data,
        out=args.out,
        resume=args.resume,
        overrides=args.overrides,
        trust_code=args.trust_code,
        overwrite=args.overwrite,
        init=args.init,
    )
    print(f"run: {run}")


def _serve(args: argparse.Namespace) -> None:
    from vaekit.optional import require

    require("fastapi", "serve", "vaekit serve")  # the web stack loads only for this command
    from vaekit.serve import serve

    serve(args.run, args.host, args.port, args.device, allow_hosts=args.allow_host)


def _save_grid(*args, **kwargs) -> Path:
    from vaekit.explore.grids import save_grid

    return save_grid(*args, **kwargs)


def _reconstruct(args: argparse.Namespace) -> None:
    from vaekit import api
    from vaekit.explore.grids import interleave

    model = api.load(args.run, trust_code=args.trust_code)
    if args.full_size:
        for i, path in enumerate(args.images):
            image = api.load_full_size(path, model.config)
            stem = args.output.with_suffix("")
            print(f"wrote {_save_grid(api.reconstruct_full_size(model, image)[None], f'{stem}-{i}.png', 1)}")
        return
    images = api.load_images(args.images, model.config)
    recon = model.reconstruct(images).cpu()
    per_row = min(len(images), 8)
    print(f"wrote {_save_grid(interleave(images, recon, per_row), args.output, per_row)}")


def _sample(args: argparse.Namespace) -> None:
    from vaekit import api
    from vaekit.explore.sampling import dump_images

    images = api.sample(
        api.load(args.run, trust_code=args.trust_code), args.n, seed=args.seed, temperature=args.temperature
    )
    print(f"wrote {_save_grid(images, args.output)}")
    if args.dump:
        print(f"wrote {len(dump_images(images, args.dump))} images to {args.dump}")


def _interpolate(args: argparse.Namespace) -> None:
    from vaekit import api
    from vaekit.explore.interpolation import save_gif
    from vaekit.explore.sampling import manifold_frames

    if len(args.images) not in (0, 2):
        raise ValueError("interpolate takes two images (A and B) or none (random latents)")
    if args.steps < 2:
        raise ValueError("--steps must be at least 2 (the two ends)")
    model = api.load(args.run, trust_code=args.trust_code)
    if args.grid:
        rows, _, cols = args.grid.lower().partition("x")
        if not (rows.isdigit() and cols.isdigit() and int(rows) > 0 and int(cols) > 0):
            raise ValueError(f"--grid takes ROWSxCOLS with positive numbers, e.g. 8x8, not {args.grid!r}")
        if args.images:
            raise ValueError("--grid animates random latents; it takes no images")
        frames = manifold_frames(model, int(rows), int(cols), steps=args.steps, seed=args.seed)
        print(f"wrote {save_gif(frames, args.output, frame_ms=60, hold_ms=400)}")
        return
    api.interpolate(model, args.images or None, steps=args.steps, mode=args.mode, seed=args.seed, gif=args.output)
    print(f"wrote {args.output}")


def _evaluate(args: argparse.Namespace) -> None:
    from vaekit import api
    from vaekit.evaluation.report import write_report

    settings = {
        "max_images": args.max_images,
        "seed": args.seed,
        "iwae_k": args.k,
        "n_samples": args.samples,
        "features": args.features,
        "inception_weights": args.inception_weights,
        "lpips_backbone": args.lpips,
        "lpips_backbone_weights": args.lpips_backbone_weights,
        "lpips_linear_weights": args.lpips_weights,
    }
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    report = api.evaluate(
        args.run, args.data, split=args.split, metrics=metrics, trust_code=args.trust_code, **settings
    )
    json_path, markdown = write_report(report, args.output or Path(args.run) / f"evaluation-{args.split}.json")
    print(markdown.read_text().split("Settings:")[0].rstrip())
    print(f"\nwrote {json_path} and {markdown}")


def _progress(args: argparse.Namespace) -> None:
    from vaekit.explore.progress import progress_gif

    print(f"wrote {progress_gif(args.run, args.output, args.kind)}")


def _train_classifier(args: argparse.Namespace) -> None:
    from vaekit.config import DataConfig
    from vaekit.data import load_dataset
    from vaekit.features.classifier import save_classifier, train_classifier

    data = load_dataset(DataConfig(source=args.data, image_size=args.image_size, crop="none"))
    model, accuracy = train_classifier(data.split("train"), data.split("test"), epochs=args.epochs)
    path = save_classifier(model, args.output)
    print(f"wrote {path}" + (f" (test accuracy {accuracy:.4f})" if accuracy is not None else ""))


def _attributes(args: argparse.Namespace) -> None:
    from vaekit import api

    model = api.load(args.run, trust_code=args.trust_code)
    names = [a.strip() for a in args.attrs.split(",")] if args.attrs else None
    vectors = api.attributes(model, args.data, labels=args.labels, names=names)
    vectors_file, counts_file = vectors.save(args.output or api.model_folder(args.run))
    for name, count in vectors.counts.items():
        state = "" if name in vectors.vectors else "  (no vector: one side is empty)"
        print(f"{name:22s} with {count['with']:6d}  without {count['without']:6d}{state}")
    print(f"wrote {vectors_file} and {counts_file}")


def _edit(args: argparse.Namespace) -> None:
    import torch

    from vaekit import api
    from vaekit.explore.attributes import AttributeVectors, parse_strengths, parse_sweep, sweep_images

    model = api.load(args.run, trust_code=args.trust_code)
    vectors = AttributeVectors.load(api.model_folder(args.run))
    (image,) = api.load_images([args.image], model.config)
    if args.sweep:
        if len(args.attr) != 1 or "=" in args.attr[0]:
            raise ValueError("--sweep takes exactly one --attr NAME (no strength)")
        strengths = parse_sweep(args.sweep)
        strip = torch.cat([image[None], sweep_images(model, image, vectors, args.attr[0], strengths)])
        print(f"wrote {_save_grid(strip, args.output, nrow=len(strip))}  (original, then strengths {strengths})")
        return
    edited = api.edit(model, image[None], parse_strengths(args.attr), vectors=vectors)
    reconstruction = model.reconstruct(image[None]).cpu()
    print(
        f"wrote {_save_grid(torch.cat([image[None], reconstruction, edited]), args.output, nrow=3)}"
        "  (original, reconstruction, edited)"
    )


def _arithmetic(args: argparse.Namespace) -> None:
    import torch

    from vaekit import api
    from vaekit.explore.attributes import latent_arithmetic

    model = api.load(args.run, trust_code=args.trust_code)
    a, b, c = api.load_images(args.images, model.config)
    result = latent_arithmetic(model, a, b, c)
    print(f"wrote {_save_grid(torch.cat([torch.stack([a, b, c]), result]), args.output, nrow=4)}  (A, B, C, A - B + C)")


def _latent_map(args: argparse.Namespace) -> None:
    from vaekit import api

    model = api.load(args.run, trust_code=args.trust_code)
    output = api.latent_map(
        model, args.data, args.output, method=args.method, max_points=args.max_points, split=args.split
    )
    print(f"wrote {output}")


def _info(args: argparse.Namespace) -> None:
    import json

    from vaekit.sharing import describe

    info = describe(args.run, trust_code=args.trust_code)
    if args.json:
        print(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for inner, item in value.items():
                print(f"  {inner:20s} {item}")
        else:
            print(f"{key:22s} {value}")


def _config(args: argparse.Namespace) -> None:
    from vaekit.api import resolve_config
    from vaekit.config import Config

    if args.run is not None and args.preset:
        raise ValueError("config takes a run or --preset, not both")
    if args.run is not None:
        config = Config.from_yaml(args.run / "config.yaml" if args.run.is_dir() else args.run)
        config = config.with_overrides(args.overrides)
    else:
        config = resolve_config(None, args.preset, args.overrides)
    sys.stdout.write(config.to_yaml())


def _export(args: argparse.Namespace) -> None:
    from vaekit import api
    from vaekit.export import export

    model = api.load(args.run, trust_code=args.trust_code)
    for path in export(model, args.output, args.format):
        print(f"wrote {path}")


def _push(args: argparse.Namespace) -> None:
    from vaekit import api
    from vaekit.sharing import push_to_hub

    print(f"pushed to {push_to_hub(api.model_folder(args.run), args.repo_id, args.private)}")


def _presets(args: argparse.Namespace) -> None:
    from vaekit.config import available_presets, preset_description

    for name in available_presets():
        print(f"{name:22s} {preset_description(name)}")


def _demo(args: argparse.Namespace) -> None:
    from vaekit import api
    from vaekit.explore.interpolation import save_gif
    from vaekit.explore.sampling import interpolation_frames

    run = api.train(preset="shapes-demo", out=args.out, overrides=args.overrides, overwrite=True)
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
