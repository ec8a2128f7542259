"""What a trained model draws: reconstructions, samples, interpolations, attributes and edits, latent
maps, the progress GIF."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from vaekit import api
from vaekit.data.image_files import load_full_size
from vaekit.explore.attributes import AttributeVectors, latent_arithmetic, parse_strengths, parse_sweep, sweep_images
from vaekit.explore.grids import interleave, save_grid, save_image
from vaekit.explore.interpolation import save_gif
from vaekit.explore.progress import progress_gif
from vaekit.explore.sampling import dump_images, iter_samples, manifold_frames
from vaekit.explore.tokens import decode_tokens, read_tokens
from vaekit.limits import require_within_budget
from vaekit.models.latents import latent_has
from vaekit.models.samplers import describe_sampler
from vaekit.schema import ConfigError

MAX_GRID = 1024  # images in one grid PNG (sample -o)


def _save_grid(args: argparse.Namespace, images, path: Path | str, nrow: int | None = None) -> Path:
    """A grid PNG of ``images`` enlarged ``--scale`` times."""

    return save_grid(images, path, nrow, scale=args.scale)


def reconstruct(args: argparse.Namespace) -> None:
    model = api.load(args.run, trust_code=args.trust_code)
    if args.full_size:
        for i, path in enumerate(args.images):
            image = load_full_size(path, model.config)
            stem = args.output.with_suffix("")
            print(f"wrote {save_image(api.reconstruct_full_size(model, image), f'{stem}-{i}.png', args.scale)}")
        return
    images = api.load_images(args.images, model.config)
    recon = model.reconstruct(images).cpu()
    per_row = min(len(images), 8)
    print(f"wrote {_save_grid(args, interleave(images, recon, per_row), args.output, per_row)}")


def tokenize(args: argparse.Namespace) -> None:
    model = api.load(args.run, trust_code=args.trust_code)
    written = api.tokenize(model, args.data, out=args.output, split=args.split, batch_size=args.batch_size)
    tokens = read_tokens(written, model) if written.is_dir() else np.load(written, mmap_mode="r")
    shards = f" as {len(list(written.glob('*.tar')))} WebDataset shards" if written.is_dir() else ""
    print(f"wrote {written}{shards}: {tokens.shape[0]:,} token grids of {tuple(tokens.shape[1:])} ({tokens.dtype})")


def decode(args: argparse.Namespace) -> None:
    model = api.load(args.run, trust_code=args.trust_code)
    tokens = read_tokens(args.tokens, model)
    if args.output.suffix.lower() == ".png":
        shown = api.decode(model, tokens[:MAX_GRID])
        print(
            f"wrote {_save_grid(args, shown, args.output)}"
            + (f" (the first {MAX_GRID})" if len(tokens) > MAX_GRID else "")
        )
        return
    print(f"wrote {dump_images(decode_tokens(model, tokens), args.output)} images to {args.output}")


def sample(args: argparse.Namespace) -> None:
    if args.n > MAX_GRID and not args.dump:
        raise ConfigError(f"sample -n: a grid shows at most {MAX_GRID} images; write {args.n:,} with --dump DIR")
    model = _with_sampler(args)
    if args.decoder:
        model = api.use_decoder(model, args.decoder, trust_code=args.trust_code)
    if model.latent_sampler is None and latent_has(model, "tokens"):
        print(
            "note: a tokenizer's prior draws every token uniformly (noise); fit a token prior for samples: "
            f"vaekit fit-sampler {args.run} --sampler autoregressive, then --sampler autoregressive",
            file=sys.stderr,
        )
    shown = api.sample(model, min(args.n, MAX_GRID), seed=args.seed, temperature=args.temperature)
    print(f"wrote {_save_grid(args, shown, args.output)}")
    if args.dump:  # the same images, drawn again chunk by chunk: memory stays one chunk at any -n
        chunks = iter_samples(model.eval(), args.n, seed=args.seed, temperature=args.temperature)
        print(f"wrote {dump_images(chunks, args.dump)} images to {args.dump}")


def interpolate(args: argparse.Namespace) -> None:
    if len(args.images) not in (0, 2):
        raise ConfigError("interpolate takes two images (A and B) or none (random latents)")
    if args.steps < 2:
        raise ConfigError("--steps must be at least 2 (the two ends)")
    model = _with_sampler(args)
    if args.grid:
        rows, _, cols = args.grid.lower().partition("x")
        if not (rows.isdigit() and cols.isdigit() and int(rows) > 0 and int(cols) > 0):
            raise ConfigError(f"--grid takes ROWSxCOLS with positive numbers, e.g. 8x8, not {args.grid!r}")
        if args.images:
            raise ConfigError("--grid animates random latents; it takes no images")
        require_within_budget("interpolate --grid x --steps", int(rows) * int(cols) * args.steps, model.image_shape)
        frames = manifold_frames(model, int(rows), int(cols), steps=args.steps, seed=args.seed)
        print(f"wrote {save_gif(frames, args.output, frame_ms=60, hold_ms=400)}")
        return
    api.interpolate(model, args.images or None, steps=args.steps, mode=args.mode, seed=args.seed, gif=args.output)
    print(f"wrote {args.output}")


def attributes(args: argparse.Namespace) -> None:
    model = api.load(args.run, trust_code=args.trust_code)
    names = [a.strip() for a in args.attrs.split(",")] if args.attrs else None
    vectors = api.attributes(model, args.data, labels=args.labels, names=names)
    vectors_file, counts_file = vectors.save(args.output or api.model_folder(args.run))
    for name, count in vectors.counts.items():
        state = "" if name in vectors.vectors else "  (no vector: one side is empty)"
        print(f"{name:22s} with {count['with']:6d}  without {count['without']:6d}{state}")
    print(f"wrote {vectors_file} and {counts_file}")


def edit(args: argparse.Namespace) -> None:

    model = api.load(args.run, trust_code=args.trust_code)
    vectors = AttributeVectors.load(api.model_folder(args.run))
    (image,) = api.load_images([args.image], model.config)
    if args.sweep:
        if len(args.attr) != 1 or "=" in args.attr[0]:
            raise ConfigError("--sweep takes exactly one --attr NAME (no strength)")
        strengths = parse_sweep(args.sweep)
        strip = torch.cat([image[None], sweep_images(model, image, vectors, args.attr[0], strengths)])
        print(f"wrote {_save_grid(args, strip, args.output, len(strip))}  (original, then strengths {strengths})")
        return
    edited = api.edit(model, image[None], parse_strengths(args.attr), vectors=vectors)
    reconstruction = model.reconstruct(image[None]).cpu()
    print(
        f"wrote {_save_grid(args, torch.cat([image[None], reconstruction, edited]), args.output, 3)}"
        "  (original, reconstruction, edited)"
    )


def arithmetic(args: argparse.Namespace) -> None:

    model = api.load(args.run, trust_code=args.trust_code)
    a, b, c = api.load_images(args.images, model.config)
    result = latent_arithmetic(model, a, b, c)
    print(
        f"wrote {_save_grid(args, torch.cat([torch.stack([a, b, c]), result]), args.output, 4)}  (A, B, C, A - B + C)"
    )


def latent_map(args: argparse.Namespace) -> None:
    model = api.load(args.run, trust_code=args.trust_code)
    output = api.latent_map(
        model, args.data, args.output, method=args.method, max_points=args.max_points, split=args.split
    )
    print(f"wrote {output}")


def progress(args: argparse.Namespace) -> None:
    print(f"wrote {progress_gif(args.run, args.output, args.kind)}")


def _with_sampler(args: argparse.Namespace):
    """The model drawing from ``--sampler`` (default: the one its card names), saying which."""
    if args.sampler:
        model = api.use_sampler(args.run, args.sampler, trust_code=args.trust_code)
    else:
        model = api.as_model(args.run, args.trust_code)
    print(f"new latents from {describe_sampler(model)}", file=sys.stderr)
    return model
