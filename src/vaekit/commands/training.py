"""Training: a run, the demo, the ex-post sampler, the domain classifier."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vaekit import api
from vaekit.config import Config
from vaekit.data import load_dataset
from vaekit.data.labels import classes_from_folders
from vaekit.explore.interpolation import save_gif
from vaekit.explore.sampling import interpolation_frames
from vaekit.features import classifier
from vaekit.io.files import require_writable
from vaekit.models.samplers import FILE
from vaekit.training.setup import seconds_per_step


def train(args: argparse.Namespace) -> None:
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
    if os.environ.get("RANK", "0") == "0":  # under torchrun: once, from the process that wrote the run
        print(f"run: {run}")


def distill(args: argparse.Namespace) -> None:
    run = api.distill(
        args.teacher, args.student, data=args.data, out=args.out, overrides=args.overrides, overwrite=args.overwrite
    )
    print(f"run: {run}")
    print(
        f"previews: vaekit sample {args.teacher} --decoder {run}; as diffusers: vaekit export {run} --format diffusers"
    )


def demo(args: argparse.Namespace) -> None:
    config = api.resolve_config(None, "shapes-demo", args.overrides)
    data, train = config.data, config.train
    steps = train.epochs * int(data.num_images * (1 - data.val_fraction)) // train.batch_size
    if train.max_steps:
        steps = min(steps, train.max_steps)
    estimate = steps * seconds_per_step(config)
    print(
        f"vaekit demo: a small VAE on procedural shapes, {steps:,} training steps; about "
        + (f"{estimate:.0f} s" if estimate < 90 else f"{estimate / 60:.0f} min")
        + " of training on this machine (measured just now), then grids, curves and a GIF"
    )
    run = api.train(preset="shapes-demo", out=args.out, overrides=args.overrides, overwrite=args.overwrite)
    model = api.load(run)
    gif = save_gif(interpolation_frames(model, steps=24, seed=1), run / "interpolation.gif", scale=4)
    print(
        f"\ndemo run written to {run}/\n"
        f"  reconstructions  {run}/images/recon-final.png\n"
        f"  samples          {run}/images/samples-final.png (fitted sampler; prior: samples-final-prior.png)\n"
        f"  interpolation    {gif}\n"
        f"  curves           {run}/curves.png\n"
        f"  metrics          {run}/metrics.csv\n"
        f"try: vaekit sample {run} -n 64 -o samples.png"
    )


def fit_sampler(args: argparse.Namespace) -> None:
    options = {"components": args.components} if args.sampler == "gmm" else {"max_time": args.max_time}
    fitted = api.fit_sampler(
        args.run, args.data, sampler=args.sampler, max_images=args.max_images, seed=args.seed, **options
    )
    print(f"fitted {fitted.describe()}")
    print(f"wrote {api.model_folder(args.run) / FILE.format(name=args.sampler)}; use it with --sampler {args.sampler}")


def train_classifier(args: argparse.Namespace) -> None:
    require_writable(Path(args.output))  # before minutes of training, not after
    given = {"data.source": args.data, "data.image_size": args.image_size, "data.crop": args.crop}
    settings = Config().with_overrides({**given, "data.labels": args.labels})  # checked as any config is
    data = load_dataset(settings.data)
    if data.labels is None:
        data = classes_from_folders(data)
    model, accuracy = classifier.train_classifier(data.split("train"), data.split("test"), epochs=args.epochs)
    path = classifier.save_classifier(model, args.output)
    print(f"wrote {path}" + (f" (test accuracy {accuracy:.4f})" if accuracy is not None else ""))
