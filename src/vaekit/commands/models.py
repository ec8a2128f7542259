"""A trained model as a whole: its metrics, its card and config, its export and upload, the explorer."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vaekit import api
from vaekit.api import resolve_config
from vaekit.config import Config
from vaekit.evaluation.report import fixed, write_report
from vaekit.export import export as export_model
from vaekit.io.card import named_sampler, read_info
from vaekit.io.hub import push_to_hub
from vaekit.optional import require
from vaekit.pretrained import card_folder, describe
from vaekit.schema import ConfigError


def evaluate(args: argparse.Namespace) -> None:
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
    folder = card_folder(args.run)
    used = args.sampler or (named_sampler(read_info(folder)) if folder is not None else None) or "prior"
    sampler = "" if used == "prior" else f"-{used}"  # a GMM's report beside the prior's
    default = Path(args.run) / f"evaluation-{report['data']['split']}{sampler}.json"
    json_path, markdown = write_report(report, args.output or default)
    print(markdown.read_text().split("Settings:")[0].rstrip())
    print(f"\nwrote {json_path} and {markdown}")


def info(args: argparse.Namespace) -> None:

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
    """A value of ``vaekit info``: numbers in fixed notation, as the evaluation report writes them."""
    if isinstance(value, list) and value and all(isinstance(v, float) for v in value):
        return "[" + ", ".join(fixed(v) for v in value) + "]"
    return fixed(value) if isinstance(value, float) else str(value)


def config(args: argparse.Namespace) -> None:
    if args.run is not None and args.preset:
        raise ConfigError("config takes a run or --preset, not both")
    if args.run is not None:
        config = Config.from_yaml(args.run / "config.yaml" if args.run.is_dir() else args.run)
        config = config.with_overrides(args.overrides)
    else:
        config = resolve_config(None, args.preset, args.overrides)
    sys.stdout.write(config.to_yaml())


def export(args: argparse.Namespace) -> None:
    model = api.load(args.run, trust_code=args.trust_code)
    for path in export_model(model, args.output, args.format):
        print(f"wrote {path}")


def push(args: argparse.Namespace) -> None:
    print(f"pushed to {push_to_hub(api.model_folder(args.run), args.repo_id, args.private)}")


def serve(args: argparse.Namespace) -> None:
    require("fastapi", "serve", "vaekit serve")  # the web stack loads only for this command
    from vaekit.web import serve

    serve(
        args.run, args.host, args.port, args.device, allow_hosts=args.allow_host, sampler=args.sampler,
        decoder=args.decoder,
    )  # fmt: skip
