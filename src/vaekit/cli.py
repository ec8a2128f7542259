"""The ``vaekit`` command: parses arguments and hands them to a function of ``vaekit.commands``
(``module:name``, imported when that command runs). Nothing here holds logic of its own.

Exit codes: 0 done; 1 a runtime error (one line); 2 a usage or config error (one line);
130 stopped by Ctrl-C, 143 stopped by SIGTERM (after a checkpoint: continue with --resume).
A command's module is imported only when that command runs, so ``vaekit --help`` answers at once.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import warnings
from pathlib import Path

from vaekit.commands.arguments import days, finite_float, grid_scale, port_number, positive_int, seed_number
from vaekit.commands.terminal import Printable, printable, show_warning
from vaekit.version import __version__

DEBUG_HINT = "VAEKIT_DEBUG=1 shows the traceback"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_join_negative_values(sys.argv[1:] if argv is None else argv))
    if getattr(args, "trust_code", False):
        from vaekit.plugins import allow_code

        allow_code()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            if args.plugin:
                from vaekit.registry import load_plugin

                for module in args.plugin:
                    load_plugin(module)
            with contextlib.redirect_stdout(Printable(sys.stdout)):  # every line a command prints
                return command(args.handler)(args) or 0
    except BaseException as err:  # every failure is one line with the right exit code
        if os.environ.get("VAEKIT_DEBUG") or isinstance(err, SystemExit):
            raise
        code, message = describe_error(err)
        print(f"vaekit: {printable(message)}", file=sys.stderr)
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


class Registered:
    """``choices`` of an option: the names registered for a component kind, read when the command
    line is checked or its help printed (so ``vaekit --help`` imports no component)."""

    def __init__(self, kind: str, without: tuple[str, ...] = ()) -> None:
        self.kind, self.without = kind, without

    def _names(self) -> list[str]:
        from vaekit.registry import kind

        return [name for name in kind(self.kind).names() if name not in self.without]

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self):
        return iter(self._names())


def command(handler: str):
    """The function ``module:name`` of ``vaekit.commands`` names, its module imported now."""
    module, _, name = handler.partition(":")
    return getattr(importlib.import_module(f"vaekit.commands.{module}"), name)


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--sweep -2:2:9`` -> ``--sweep=-2:2:9`` (argparse would read ``-2:2:9`` as an option)."""
    joined, items = [], iter(argv)
    for item in items:
        joined.append(f"{item}={next(items, '')}" if item == "--sweep" else item)
    return joined


SAMPLER_HELP = (
    "where random latents come from (%(choices)s): the prior, or what fit-sampler fitted "
    "(default: the sampler the model card names, fitted at the end of training, else the prior)"
)


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows every default there is (an option without one says nothing of it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or "%(default)" in text:
            return text
        return super()._get_help_string(action) or text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vaekit",
        description="Train and use variational autoencoders on images.",
        epilog="exit codes: 0 ok, 1 runtime error, 2 usage/config error, 130 Ctrl-C, 143 SIGTERM",
    )
    parser.add_argument("--version", action="version", version=f"vaekit {__version__}")
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE (a package: each of its modules) so that the components it defines register; "
        "also $VAEKIT_PLUGINS (comma-separated) and installed packages' vaekit.components entry points",
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    trust = argparse.ArgumentParser(add_help=False)
    trust.add_argument(
        "--trust-code",
        action="store_true",
        help="allow importing the code a config names (package.module:Name plug-ins, user networks)",
    )

    grid = argparse.ArgumentParser(add_help=False)
    grid.add_argument("--scale", type=grid_scale, default=1, help="enlarge the PNG N times (pixels kept sharp)")

    def command(name: str, help: str, grids: bool = False) -> argparse.ArgumentParser:
        parents = [trust, grid] if grids else [trust]
        return subcommands.add_parser(name, help=help, description=help, parents=parents, formatter_class=_Formatter)

    p = command("train", "train a model (or resume a run)")
    p.epilog = (
        "Without --preset, --config or --init, vaekit chooses the model, likelihood and budget from the data "
        "and prints what it chose and why (any --set key overrides a choice). Keys: `vaekit config` prints every key "
        "with its default (`vaekit config RUN`: a run's), `vaekit components` the names a key takes."
    )
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
    p.set_defaults(handler="training:train")

    p = command(
        "distill", "train a fast student (a TAESD-style preview decoder) to reproduce a model's latents and decodes"
    )
    p.add_argument("teacher", help="the model to reproduce: run, model folder, diffusers folder or hf://owner/name")
    p.add_argument(
        "--student", default="tiny", help="tiny (diffusers' AutoencoderTiny, TAESD's design) or an architecture"
    )
    p.add_argument("--data", help="images to distil on (default: the teacher's own source)")
    p.add_argument("--out", type=Path, help="run directory (default runs/distill-<time>)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="dotted config overrides, e.g. train.max_time=10m train.trainable=decoder")  # fmt: skip
    p.set_defaults(handler="training:distill")

    p = command("reconstruct", "reconstruct images with a trained model", grids=True)
    p.add_argument("run", type=Path, help="run directory, model folder or hf://owner/name")
    p.add_argument("images", type=Path, nargs="+", help="image files")
    p.add_argument("-o", "--output", type=Path, default=Path("reconstructions.png"), help="grid PNG to write")
    p.add_argument(
        "--full-size",
        action="store_true",
        help="reconstruct each image at its own resolution in overlapping tiles (one PNG per image: OUTPUT-N.png)",
    )
    p.set_defaults(handler="images:reconstruct")

    p = command("tokenize", "a tokenizer's token grids of a dataset, as .npy (chunked; a stopped job resumes)")
    p.add_argument("run", type=Path, help="run directory or model folder of a quantized model (model.latent)")
    p.add_argument("--data", help="images to tokenize (default: the run's own source)")
    p.add_argument("--split", choices=["all", "train", "val", "test"], default="all", help="which part of the data")
    p.add_argument("-o", "--output", type=Path, required=True, help="a .npy file, or a folder of WebDataset shards")
    p.add_argument("--batch-size", type=positive_int, default=64, help="images tokenized at once")
    p.set_defaults(handler="images:tokenize")

    p = command("decode", "images from token grids (a .npy that vaekit tokenize wrote)", grids=True)
    p.add_argument("run", type=Path, help="run directory or model folder of the tokenizer")
    p.add_argument("tokens", type=Path, help="the .npy of token grids")
    p.add_argument("-o", "--output", type=Path, default=Path("decoded.png"), help="a grid PNG, or a folder (PNGs)")
    p.set_defaults(handler="images:decode")

    p = command("sample", "draw random samples from a trained model", grids=True)
    p.add_argument("run", type=Path, help="run directory, model folder or hf://owner/name")
    p.add_argument("-n", type=positive_int, default=64, help="number of samples")
    p.add_argument("-o", "--output", type=Path, default=Path("samples.png"), help="grid PNG to write")
    p.add_argument("--dump", type=Path, metavar="DIR", help="also write each sample as its own PNG into DIR")
    p.add_argument("--seed", type=seed_number, default=0, help="random seed of the latents")
    p.add_argument("--temperature", type=finite_float, default=1.0, help="scale of the prior samples")
    p.add_argument("--sampler", choices=Registered("sampler"), metavar="NAME", help=SAMPLER_HELP)
    p.add_argument("--decoder", metavar="RUN", help="decode with this distilled preview decoder (vaekit distill)")
    p.set_defaults(handler="images:sample")

    p = command("fit-sampler", "fit an ex-post sampler (a Gaussian mixture, or a token prior) on the training data")
    p.add_argument("run", type=Path, help="run directory or model folder")
    p.add_argument("--data", help="images to fit on (default: the train split of the run's own source)")
    p.add_argument(
        "--sampler",
        choices=Registered("sampler"),
        metavar="NAME",
        default="gmm",
        help="gmm, or autoregressive (tokenizers)",
    )
    p.add_argument("--components", type=positive_int, help="gmm: mixture components (default: chosen by BIC)")
    p.add_argument("--max-time", type=float, default=120.0, help="autoregressive: seconds of fitting")
    p.add_argument("--max-images", type=positive_int, default=20000, help="fit on at most this many images")
    p.add_argument("--seed", type=seed_number, default=0, help="random seed of the fit")
    p.set_defaults(handler="training:fit_sampler")

    p = command("interpolate", "a GIF through latent space between two images or random points")
    p.add_argument("run", type=Path, help="run directory, model folder or hf://owner/name")
    p.add_argument("images", type=Path, nargs="*", metavar="IMAGE", help="IMAGE_A IMAGE_B (default: random latents)")
    p.add_argument("--steps", type=positive_int, default=16, help="frames from A to B")
    p.add_argument("--mode", choices=["lerp", "slerp"], default="slerp", help="path through latent space")
    p.add_argument("--grid", metavar="RxC", help="animate a grid of random latents to another (variance-preserving)")
    p.add_argument("--seed", type=seed_number, default=0, help="random seed of the latents")
    p.add_argument("--sampler", choices=Registered("sampler"), metavar="NAME", help=SAMPLER_HELP)
    p.add_argument("-o", "--output", type=Path, default=Path("interpolation.gif"), help="GIF to write")
    p.set_defaults(handler="images:interpolate")

    p = command("evaluate", "metrics of a trained model on held-out data, as JSON + Markdown")
    p.add_argument("run", type=Path, help="run directory or model folder")
    p.add_argument("--data", help="data spec (default: the run's own data source)")
    p.add_argument(
        "--split",
        choices=["all", "test", "val", "train"],
        help="which images to score (default: all of a --data source, the test split of the run's own)",
    )
    p.add_argument(
        "--metrics", default="", help="comma list (vaekit components lists them; default: elbo, reconstruction, ...)"
    )
    p.add_argument("--max-images", type=positive_int, help="use only the first N held-out images")
    p.add_argument("--k", type=positive_int, default=100, help="importance samples for the IWAE NLL")
    p.add_argument("-n", "--samples", type=positive_int, default=10000, help="generated images for FID / KID")
    p.add_argument("--features", default="inception", help="'inception' or a classifier from train-classifier")
    p.add_argument("--inception-weights", help="path to pt_inception-2015-12-05-6726825d.pth")
    p.add_argument("--lpips", choices=["vgg", "alex"], default="vgg", help="LPIPS backbone")
    p.add_argument("--lpips-backbone-weights", help="path to the torchvision VGG16 / AlexNet weights")
    p.add_argument("--lpips-weights", help="path to the LPIPS v0.1 linear weights (vgg.pth / alex.pth)")
    p.add_argument("--seed", type=seed_number, default=0, help="random seed of samples and noise")
    p.add_argument("-o", "--output", type=Path, help="JSON report (default RUN/evaluation-<split>.json)")
    p.add_argument(
        "--sampler",
        choices=Registered("sampler"),
        metavar="NAME",
        help="where FID / KID samples come from (%(choices)s; default: the one the model card names, else the prior)",
    )
    p.set_defaults(handler="models:evaluate")

    p = command("progress", "a GIF of the per-epoch grids of a run")
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--kind", choices=["samples", "recon"], default="samples", help="which grids")
    p.add_argument("-o", "--output", type=Path, default=Path("progress.gif"), help="GIF to write")
    p.set_defaults(handler="images:progress")

    p = command("train-classifier", "train a small classifier to use as FID/KID features")
    p.add_argument(
        "--data",
        required=True,
        help="labelled images: MNIST, CelebA (40 attributes), a folder of class folders, a .npz with labels",
    )
    p.add_argument("--labels", help="labels for --data: a CSV (filename,attr,...), CelebA attributes or a .npy array")
    p.add_argument("--image-size", type=positive_int, default=28, help="image side in pixels")
    p.add_argument("--epochs", type=positive_int, default=3, help="training epochs")
    p.add_argument(
        "--crop",
        default="none",
        choices=Registered("crop", without=("random",)),
        metavar="CROP",
        help="crop before resizing (%(choices)s): the same as the models it will score",
    )
    p.add_argument("-o", "--output", type=Path, default=Path("classifier.safetensors"), help="weights file")
    p.set_defaults(handler="training:train_classifier")

    p = command("shard", "convert a folder or .zip of images into WebDataset tar shards (train from them with --data)")
    p.add_argument("folder", type=Path, help="images (recursively; class folders become .cls labels)")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder for shard-NNNNNN.tar and index.json")
    p.add_argument("--per-shard", type=positive_int, default=1000, help="images per shard")
    p.set_defaults(handler="data:shard")

    p = command("attributes", "attribute vectors (mean latent difference) from labelled data")
    p.add_argument("run", type=Path, help="run directory or model folder")
    p.add_argument("--data", help="data spec (default: the run's own data source)")
    p.add_argument("--labels", help="CSV of filename,attr1,... (for image folders without CelebA labels)")
    p.add_argument("--attrs", help="comma list of attributes (default: all)")
    p.add_argument("-o", "--output", type=Path, help="folder for the vectors (default RUN/model)")
    p.set_defaults(handler="images:attributes")

    p = command("edit", "edit an image along attribute vectors", grids=True)
    p.add_argument("run", type=Path, help="run directory or model folder (with attribute vectors)")
    p.add_argument("image", type=Path, help="image file")
    p.add_argument("--attr", action="append", required=True, metavar="NAME=STRENGTH", help="repeatable")
    p.add_argument("--sweep", metavar="START:STOP:COUNT", help="a strip over strengths of one --attr NAME")
    p.add_argument("-o", "--output", type=Path, default=Path("edited.png"), help="PNG to write")
    p.set_defaults(handler="images:edit")

    p = command("arithmetic", "decode z_A - z_B + z_C", grids=True)
    p.add_argument("run", type=Path, help="run directory or model folder")
    p.add_argument("images", type=Path, nargs=3, metavar="IMAGE", help="A B C")
    p.add_argument("-o", "--output", type=Path, default=Path("arithmetic.png"), help="PNG to write")
    p.set_defaults(handler="images:arithmetic")

    p = command("latent-map", "2-D map of latent means with image thumbnails")
    p.add_argument("run", type=Path, help="run directory or model folder")
    p.add_argument("--data", help="data spec (default: the run's own data source)")
    p.add_argument("--split", default="train", choices=["train", "val", "test"], help="which split to map")
    p.add_argument("--method", choices=["tsne", "pca", "umap"], default="tsne", help="projection to 2-D")
    p.add_argument("--max-points", type=positive_int, default=500, help="images on the map")
    p.add_argument("-o", "--output", type=Path, default=Path("latent-map.png"), help="PNG to write")
    p.set_defaults(handler="images:latent_map")

    p = command("serve", "a local web page to explore a trained model")
    p.add_argument("run", type=Path, help="run directory or model folder")
    p.add_argument("--port", type=port_number, default=8000, help="TCP port")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)")
    p.add_argument("--device", default="cpu", help="torch device for the model")
    p.add_argument(
        "--allow-host", action="append", default=[], metavar="NAME", help="also answer to this Host name (repeatable)"
    )
    p.add_argument("--sampler", choices=Registered("sampler"), metavar="NAME", help=SAMPLER_HELP)
    p.add_argument("--decoder", metavar="RUN", help="decode with this distilled preview decoder (vaekit distill)")
    p.set_defaults(handler="models:serve")

    p = command("info", "what a run or model folder holds: architecture, size, data, steps, metrics, versions")
    p.add_argument("run", help="run directory, model folder or hf://owner/name")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler="models:info")

    p = command("config", "print a full resolved config as YAML (that --config takes back)")
    p.add_argument("run", nargs="?", type=Path, help="a run directory (or use --preset)")
    p.add_argument("--preset", help="a built-in preset")
    p.add_argument(
        "--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="config overrides"
    )
    p.set_defaults(handler="models:config")

    p = command(
        "export", "export a model: encoder and decoder as ONNX or TorchScript, or a diffusers AutoencoderKL folder"
    )
    p.add_argument("run", help="run directory, model folder or hf://owner/name")
    p.add_argument(
        "--format",
        choices=["onnx", "torchscript", "diffusers"],
        default="onnx",
        help="onnx / torchscript: encoder and decoder files; diffusers: an AutoencoderKL.from_pretrained folder "
        "(KL autoencoders, after `vaekit evaluate RUN --metrics latents`)",
    )
    p.add_argument("-o", "--output", type=Path, default=Path("export"), help="folder to write")
    p.set_defaults(handler="models:export")

    p = command("push", "upload a run's model folder to the Hugging Face Hub")
    p.add_argument("run", type=Path, help="run directory or model folder")
    p.add_argument("repo_id", help="owner/name on the Hub")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.set_defaults(handler="models:push")

    p = command("cache", "what the dataset cache holds (decoded datasets, partial builds), and removing it")
    p.add_argument("--dir", help="the cache folder (default: $VAEKIT_CACHE or ~/.cache/vaekit)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--prune", type=days, metavar="DAYS", help="remove entries not used for DAYS days")
    what.add_argument("--clear", action="store_true", help="remove every decoded dataset (not streams or downloads)")
    p.set_defaults(handler="data:cache")

    p = command("presets", "list the built-in presets")
    p.set_defaults(handler="listings:presets")

    p = command(
        "components", "list every registered component: its name, summary, capabilities and where its options live"
    )
    p.add_argument("kind", nargs="?", help="only this kind (e.g. architecture, objective-term, sampler, crop)")
    p.add_argument("--markdown", action="store_true", help="one Markdown table (as in the README)")
    p.set_defaults(handler="listings:components")

    p = command("demo", "train on the built-in shapes for ~2 minutes and write a complete run")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="run directory")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument(
        "--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="config overrides"
    )
    p.set_defaults(handler="training:demo")
    return parser
