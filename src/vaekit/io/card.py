"""What a model folder says about itself: ``vaekit.json`` (versions, architecture, data, steps, final
metrics, latent scaling) and a ``README.md`` model card; ``save_pretrained`` writes a whole folder."""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from vaekit.io.checkpoints import save_weights
from vaekit.io.files import replace_folder, write_atomically
from vaekit.version import __version__

if TYPE_CHECKING:
    from torch import nn

    from vaekit.config import Config

INFO_FILE = "vaekit.json"
REPORTED_NAMES = {"nll": "reconstruction_nll"}  # a held-out number as evaluate names it (metrics.csv: nll)


def reported(metrics: dict[str, float] | None) -> dict[str, float]:
    """Held-out metrics under the names ``vaekit evaluate`` gives them (one name per quantity)."""
    return {REPORTED_NAMES.get(key, key): value for key, value in (metrics or {}).items()}


SAMPLER_FILE = "sampler-{name}.safetensors"  # a fitted sampler beside the weights (models/samplers.py)


def model_info(
    config: Config, model: nn.Module, steps: int | None, metrics: dict[str, float], scaling: dict | None = None
) -> dict[str, Any]:
    """What a model folder says about itself (also what ``vaekit info`` prints)."""
    import torch

    data = config.data
    return {
        "vaekit_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        "architecture": config.model.arch,
        "objective": config.objective.name,
        "likelihood": config.likelihood.name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "latent_shape": list(model.latent_shape),
        "data_shape": list(model.image_shape),
        "data": {
            "source": published_source(data.source),
            "fingerprint": data.fingerprint,
            "image_size": data.image_size,
        },
        "steps": steps,
        "final_metrics": reported(metrics),
        "latent_scaling": scaling or {},
    }


def published_source(source: str) -> str:
    """The data a model card names, for others to read: a local path as its last folder's name (the
    machine's layout, user name included, stays in config.yaml), a URL without credentials or query."""
    kind, sep, rest = source.partition(":")
    if sep and "://" not in source and re.fullmatch(r"[a-z][a-z0-9_-]*", kind) and len(kind) > 1:
        return f"{kind}:{published_source(rest)}"  # kind:path
    if "://" in source:
        parts = urlsplit(source)
        return urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", ""))
    path = PurePath(source)
    return path.name if path.is_absolute() or len(path.parts) > 1 else source


def write_model_card(
    folder: Path,
    config: Config,
    model: nn.Module,
    steps: int | None,
    metrics: dict[str, float] | None = None,
    scaling: dict[str, float] | None = None,
) -> None:
    """``vaekit.json`` and ``README.md`` beside the weights (``scaling``: the latents' scaling and
    shift factors over the training data, see ``evaluation.likelihood.latent_scaling``)."""
    info = model_info(config, model, steps, metrics or {}, scaling)
    write_atomically(folder / INFO_FILE, json.dumps(info, indent=2) + "\n")
    rows = "\n".join(f"| {k} | {v:.6g} |" for k, v in info["final_metrics"].items()) or "| (none recorded) | |"
    latents = info["latent_scaling"]
    scaling_lines = (
        f"\n## Latents for diffusion\n\nscaling_factor {latents['scaling_factor']:.6g}"
        + (f", shift_factor {latents['shift_factor']:.6g}" if latents.get("shift_factor") is not None else "")
        + (
            f" (measured over {latents['images']} training images)"
            if latents.get("images")
            else " (measured over the training data)"
        )
        + ": diffusion trains on `(z - shift_factor) * scaling_factor`"
        + (
            "; per channel, latents_mean "
            + ", ".join(f"{v:.4g}" for v in latents["latents_mean"])
            + " and latents_std "
            + ", ".join(f"{v:.4g}" for v in latents["latents_std"])
            if latents.get("latents_mean")
            else ""
        )
        + ".\n"
        if latents.get("scaling_factor")
        else ""
    )
    write_atomically(
        folder / "README.md",
        "---\nlibrary_name: vaekit\ntags:\n- vaekit\n- variational-autoencoder\n- image-generation\n---\n\n"
        f"# {info['architecture']} VAE trained with vaekit\n\n"
        f"- objective: {info['objective']}, likelihood: {info['likelihood']}\n"
        f"- parameters: {info['parameters']:,}; latent shape {info['latent_shape']}; data shape {info['data_shape']}\n"
        f"- data: {info['data']['source']}"
        + (f" (fingerprint {info['data']['fingerprint']})" if info["data"]["fingerprint"] else "")
        + f"\n- steps: {steps}\n- vaekit {info['vaekit_version']}, torch {info['torch_version']}\n\n"
        "## Final held-out metrics\n\n| metric | value |\n|---|---|\n"
        f"{rows}\n{scaling_lines}\n## Use\n\n"
        f'```python\nimport vaekit\nmodel = vaekit.load("THIS_FOLDER_OR_HUB_ID")\n'
        "images = model.generate(16)  # (16, C, H, W) in [0, 1]\n```\n",
    )


def read_info(folder: Path) -> dict[str, Any]:
    path = folder / INFO_FILE
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text())
    except (ValueError, OSError):
        return {}
    return info if isinstance(info, dict) else {}


def named_sampler(info: dict[str, Any]) -> str | None:
    """The sampler a card names as the one new images come from (``record_sampler``), or None."""
    named = info.get("sampler")
    name = named.get("name") if isinstance(named, dict) else None
    return str(name) if name else None


def record_sampler(folder: Path, name: str, description: str) -> None:
    """Name ``name`` in ``folder``'s card as the sampler its new images come from (``vaekit.load``
    attaches it; ``--sampler prior`` overrides)."""
    _update_info(folder, "sampler", {"name": name, "description": description})
    _replace_section(
        folder,
        "Sampling",
        f"New images are drawn from {description}, fitted on the training data at the end of training "
        f"(`{SAMPLER_FILE.format(name=name)}`); `--sampler prior` draws from the prior instead.\n",
    )


CARD_METRICS = ("fid", "kid", "precision", "recall", "density", "coverage", "rfid", "psnr", "ssim")


def record_evaluation(folder: Path, report: dict[str, Any]) -> None:
    """The headline numbers of an evaluation (by split, sampler and feature network) kept in
    ``folder``'s card, so the card shows, e.g., the prior's and the mixture's FID side by side."""
    flat = {k: v for group in report["metrics"].values() if isinstance(group, dict) for k, v in group.items()}
    shown = {name: flat[name] for name in CARD_METRICS if isinstance(flat.get(name), int | float)}
    if not shown:
        return
    settings = report.get("settings", {})
    key = f"{report['data']['split']} | {settings.get('sampler', 'prior')} | {settings.get('feature_network', '-')}"
    evaluations = {**read_info(folder).get("evaluations", {}), key: shown}
    _update_info(folder, "evaluations", evaluations)
    rows = [f"| {name} | " + ", ".join(f"{k} {v:.4g}" for k, v in values.items()) + " |"
            for name, values in evaluations.items()]  # fmt: skip
    _replace_section(
        folder, "Evaluations", "| split | sampler | features | numbers |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def _update_info(folder: Path, key: str, value: Any) -> None:
    """``vaekit.json`` of ``folder`` with ``key`` set to ``value``, written whole."""
    info = read_info(folder)
    info[key] = value
    write_atomically(folder / INFO_FILE, json.dumps(info, indent=2) + "\n")


def _replace_section(folder: Path, title: str, body: str) -> None:
    """The model card's ``## title`` section replaced by ``body`` (added at the end if absent);
    the sections after it are kept."""
    card = folder / "README.md"
    text = card.read_text() if card.is_file() else ""
    before, _, after = text.partition(f"\n## {title}\n")
    rest = after[after.find("\n## ") :] if "\n## " in after else ""
    write_atomically(card, before.rstrip("\n") + f"\n\n## {title}\n\n" + body + rest)


def write_model_folder(
    folder: Path,
    model: nn.Module,
    config: Config,
    steps: int | None,
    metrics: dict[str, float] | None = None,
    scaling: dict[str, float] | None = None,
) -> Path:
    """A self-describing model folder: weights (refused with ``NonFinite`` when any is not finite),
    ``config.yaml``, ``vaekit.json`` and the model card, written aside and swapped in whole, so a
    crash never leaves weights beside another model's card. Other files in it are kept."""

    def write(new: Path) -> None:
        save_weights(model, new)
        write_atomically(new / "config.yaml", config.to_yaml())
        write_model_card(new, config, model, steps, metrics, scaling)

    return replace_folder(folder, write)


def save_pretrained(model: nn.Module, folder: Path) -> Path:
    """Weights, config and model card of ``model`` (it must carry ``model.config``) into ``folder``."""
    config = getattr(model, "config", None)
    if config is None:
        raise ValueError("save_pretrained needs a model with a config: one from vaekit.load or vaekit.train")
    previous = getattr(model, "info", {}) or {}
    steps, metrics, scaling = previous.get("steps"), previous.get("final_metrics"), previous.get("latent_scaling")
    return write_model_folder(folder, model, config, steps, metrics, scaling)
