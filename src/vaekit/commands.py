"""One function per ``vaekit`` command: it takes the parsed arguments, calls the API and prints
what it wrote. Heavy modules are imported inside, so the command line starts at once."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vaekit.schema import ConfigError


def train(args: argparse.Namespace) -> None:
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
    if os.environ.get("RANK", "0") == "0":  # under torchrun: once, from the process that wrote the run
        print(f"run: {run}")


def serve(args: argparse.Namespace) -> None:
    from vaekit.optional import require

    require("fastapi", "serve", "vaekit serve")  # the web stack loads only for this command
    from vaekit.web import serve

    serve(args.run, args.host, args.port, args.device, allow_hosts=args.allow_host, sampler=args.sampler)


MAX_GRID = 1024  # images in one grid PNG (sample -o)


def _save_grid(args: argparse.Namespace, images, path: Path | str, nrow: int | None = None) -> Path:
    """A grid PNG of ``images`` enlarged ``--scale`` times."""
    from vaekit.explore.grids import save_grid

    return save_grid(images, path, nrow, scale=args.scale)


def reconstruct(args: argparse.Namespace) -> None:
    from vaekit import api
    from vaekit.explore.grids import interleave, save_image

    model = api.load(args.run, trust_code=args.trust_code)
    if args.full_size:
        for i, path in enumerate(args.images):
            image = api.load_full_size(path, model.config)
            stem = args.output.with_suffix("")
            print(f"wrote {save_image(api.reconstruct_full_size(model, image), f'{stem}-{i}.png', args.scale)}")
        return
    images = api.load_images(args.images, model.config)
    recon = model.reconstruct(images).cpu()
    per_row = min(len(images), 8)
    print(f"wrote {_save_grid(args, interleave(images, recon, per_row), args.output, per_row)}")


def sample(args: argparse.Namespace) -> None:
    from vaekit import api
    from vaekit.explore.sampling import dump_images, iter_samples

    if args.n > MAX_GRID and not args.dump:
        raise ConfigError(f"sample -n: a grid shows at most {MAX_GRID} images; write {args.n:,} with --dump DIR")
    model = api.use_sampler(args.run, args.sampler, trust_code=args.trust_code)
    shown = api.sample(model, min(args.n, MAX_GRID), seed=args.seed, temperature=args.temperature)
    print(f"wrote {_save_grid(args, shown, args.output)}")
    if args.dump:  # the same images, drawn again chunk by chunk: memory stays one chunk at any -n
        chunks = iter_samples(model.eval(), args.n, seed=args.seed, temperature=args.temperature)
        print(f"wrote {dump_images(chunks, args.dump)} images to {args.dump}")


def interpolate(args: argparse.Namespace) -> None:
    from vaekit import api
    from vaekit.explore.interpolation import save_gif
    from vaekit.explore.sampling import manifold_frames
    from vaekit.limits import require_within_budget

    if len(args.images) not in (0, 2):
        raise ConfigError("interpolate takes two images (A and B) or none (random latents)")
    if args.steps < 2:
        raise ConfigError("--steps must be at least 2 (the two ends)")
    model = api.use_sampler(args.run, args.sampler, trust_code=args.trust_code)
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


def fit_sampler(args: argparse.Namespace) -> None:
    from vaekit import api
    from vaekit.models.samplers import FILE

    mixture = api.fit_sampler(
        args.run, args.data, components=args.components, max_images=args.max_images, seed=args.seed
    )
    print(
        f"fitted a {len(mixture.weights)}-component Gaussian mixture ({'full' if mixture.full else 'diagonal'} "
        f"covariances, BIC {mixture.bic:.6g}) on {mixture.fitted_on:,} posterior means"
    )
    print(f"wrote {api.model_folder(args.run) / FILE.format(name='gmm')}; use it with --sampler gmm")


def evaluate(args: argparse.Namespace) -> None:
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
        args.run, args.data, split=args.split, metrics=metrics, trust_code=args.trust_code, sampler=args.sampler,
        **settings,
    )  # fmt: skip
    sampler = "" if args.sampler == "prior" else f"-{args.sampler}"  # a GMM's report beside the prior's
    default = Path(args.run) / f"evaluation-{report['data']['split']}{sampler}.json"
    json_path, markdown = write_report(report, args.output or default)
    print(markdown.read_text().split("Settings:")[0].rstrip())
    print(f"\nwrote {json_path} and {markdown}")


def progress(args: argparse.Namespace) -> None:
    from vaekit.explore.progress import progress_gif

    print(f"wrote {progress_gif(args.run, args.output, args.kind)}")


def train_classifier(args: argparse.Namespace) -> None:
    from vaekit.config import DataConfig
    from vaekit.data import load_dataset
    from vaekit.data.labels import classes_from_folders
    from vaekit.features.classifier import save_classifier, train_classifier
    from vaekit.io.files import require_writable

    require_writable(Path(args.output))  # before minutes of training, not after
    data = load_dataset(DataConfig(source=args.data, image_size=args.image_size, crop=args.crop, labels=args.labels))
    if data.labels is None:
        data = classes_from_folders(data)
    model, accuracy = train_classifier(data.split("train"), data.split("test"), epochs=args.epochs)
    path = save_classifier(model, args.output)
    print(f"wrote {path}" + (f" (test accuracy {accuracy:.4f})" if accuracy is not None else ""))


def shard(args: argparse.Namespace) -> None:
    from vaekit.data.images import ImageFiles
    from vaekit.data.progress import JobProgress
    from vaekit.data.shards import iter_folder, write_shards

    if args.output.resolve() == args.folder.resolve() or args.output.resolve().is_relative_to(args.folder.resolve()):
        raise ConfigError("shard -o: write the shards outside the folder being converted")
    files = ImageFiles.scan(args.folder)
    with JobProgress(f"sharding {args.folder.name}", len(files.members)) as progress:

        def counted(items):
            for item in items:
                yield item
                progress.advance(1)

        written = write_shards(counted(iter_folder(files)), args.output, args.per_shard)
    print(f"wrote {len(written)} shard(s) to {args.output}/ (train with --data {args.output})")


def cache(args: argparse.Namespace) -> None:
    import time

    from vaekit.data.cache import cache_root
    from vaekit.data.cache_items import cache_items, remove_items

    root = cache_root(args.dir)
    items = cache_items(root)
    if args.clear or args.prune is not None:
        cutoff = time.time() - (args.prune or 0) * 86400
        chosen = [i for i in items if i.kind != "kept" and (args.clear or i.kind in ("entry", "partial"))]
        chosen = [i for i in chosen if args.clear or i.last_used < cutoff]
        freed = remove_items(chosen)
        print(f"removed {len(chosen)} item(s) from {root}, {freed / 2**30:.2f} GiB freed")
        return
    if not items:
        print(f"{root}: nothing cached")
        return
    for item in items:
        used = time.strftime("%Y-%m-%d", time.localtime(item.last_used))
        details = ["x".join(map(str, item.shape)) if item.shape else ""]
        details += [f"{item.done:.0%} decoded" if item.done is not None else "", item.source]
        shown = "  ".join(d for d in details if d)
        print(f"{item.kind:8s} {item.bytes / 2**30:8.2f} GiB  {used}  {item.path.name}  {shown}".rstrip())
    total = sum(item.bytes for item in items)
    print(f"{len(items)} item(s) in {root}, {total / 2**30:.2f} GiB (--prune DAYS removes entries unused that long)")


def attributes(args: argparse.Namespace) -> None:
    from vaekit import api

    model = api.load(args.run, trust_code=args.trust_code)
    names = [a.strip() for a in args.attrs.split(",")] if args.attrs else None
    vectors = api.attributes(model, args.data, labels=args.labels, names=names)
    vectors_file, counts_file = vectors.save(args.output or api.model_folder(args.run))
    for name, count in vectors.counts.items():
        state = "" if name in vectors.vectors else "  (no vector: one side is empty)"
        print(f"{name:22s} with {count['with']:6d}  without {count['without']:6d}{state}")
    print(f"wrote {vectors_file} and {counts_file}")


def edit(args: argparse.Namespace) -> None:
    import torch

    from vaekit import api
    from vaekit.explore.attributes import AttributeVectors, parse_strengths, parse_sweep, sweep_images

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
    import torch

    from vaekit import api
    from vaekit.explore.attributes import latent_arithmetic

    model = api.load(args.run, trust_code=args.trust_code)
    a, b, c = api.load_images(args.images, model.config)
    result = latent_arithmetic(model, a, b, c)
    print(
        f"wrote {_save_grid(args, torch.cat([torch.stack([a, b, c]), result]), args.output, 4)}  (A, B, C, A - B + C)"
    )


def latent_map(args: argparse.Namespace) -> None:
    from vaekit import api

    model = api.load(args.run, trust_code=args.trust_code)
    output = api.latent_map(
        model, args.data, args.output, method=args.method, max_points=args.max_points, split=args.split
    )
    print(f"wrote {output}")


def info(args: argparse.Namespace) -> None:
    import json

    from vaekit.pretrained import describe

    info = describe(args.run, trust_code=args.trust_code)
    if args.json:
        print(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for inner, item in value.items():
                print(f"  {inner:20s} {_shown(item)}")
        else:
            print(f"{key:22s} {value}")


def _shown(value) -> str:
    """A value of ``vaekit info``: numbers in lists to four significant digits."""
    if isinstance(value, list) and value and all(isinstance(v, float) for v in value):
        return "[" + ", ".join(f"{v:.4g}" for v in value) + "]"
    return str(value)


def config(args: argparse.Namespace) -> None:
    from vaekit.api import resolve_config
    from vaekit.config import Config

    if args.run is not None and args.preset:
        raise ConfigError("config takes a run or --preset, not both")
    if args.run is not None:
        config = Config.from_yaml(args.run / "config.yaml" if args.run.is_dir() else args.run)
        config = config.with_overrides(args.overrides)
    else:
        config = resolve_config(None, args.preset, args.overrides)
    sys.stdout.write(config.to_yaml())


def export(args: argparse.Namespace) -> None:
    from vaekit import api
    from vaekit.export import export

    model = api.load(args.run, trust_code=args.trust_code)
    for path in export(model, args.output, args.format):
        print(f"wrote {path}")


def push(args: argparse.Namespace) -> None:
    from vaekit import api
    from vaekit.io.hub import push_to_hub

    print(f"pushed to {push_to_hub(api.model_folder(args.run), args.repo_id, args.private)}")


def presets(args: argparse.Namespace) -> None:
    from vaekit.config import available_presets, preset_description

    for name in available_presets():
        print(f"{name:22s} {preset_description(name)}")


def components(args: argparse.Namespace) -> None:
    from vaekit.registry import kinds

    wanted = args.kind.replace("-", " ") if args.kind else None
    shown = [r for r in kinds() if wanted in (None, r.kind, r.kind + "s", r.kind.split()[0])]
    if not shown:
        raise ConfigError(f"components: unknown kind {args.kind!r}; use one of {', '.join(r.kind for r in kinds())}")
    if args.markdown:
        print(components_table(shown))
        return
    for registry in shown:
        print(f"{registry.kind}s ({registry.key}):")
        for entry in registry:
            capabilities = f"  [{', '.join(sorted(entry.capabilities))}]" if entry.capabilities else ""
            options = f"  options: {entry.options_key}.*" if entry.options_key else ""
            print(f"  {entry.name:16s} {entry.summary}{capabilities}{options}")


def components_table(registries: list) -> str:
    """The components as one Markdown table (the README's is this, for vaekit's own)."""
    lines = ["| kind | name | what it is | capabilities | options |", "|---|---|---|---|---|"]
    for registry in registries:
        for entry in registry:
            options = f"`{entry.options_key}.*`" if entry.options_key else ""
            capabilities = ", ".join(sorted(entry.capabilities))
            lines.append(f"| {registry.kind} | `{entry.name}` | {entry.summary} | {capabilities} | {options} |")
    return "\n".join(lines)


def demo(args: argparse.Namespace) -> None:
    from vaekit import api
    from vaekit.explore.interpolation import save_gif
    from vaekit.explore.sampling import interpolation_frames
    from vaekit.training.setup import seconds_per_step

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
        f"  samples          {run}/images/samples-final.png\n"
        f"  interpolation    {gif}\n"
        f"  curves           {run}/curves.png\n"
        f"  metrics          {run}/metrics.csv\n"
        f"try: vaekit sample {run} -n 64 -o samples.png"
    )
