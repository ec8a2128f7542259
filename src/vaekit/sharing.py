"""Self-describing model folders and the Hugging Face Hub.

A model folder holds ``model.safetensors``, ``config.yaml``, ``vaekit.json`` (vaekit and torch
versions, architecture, parameter count, data, steps, final metrics) and a ``README.md`` model card.
``vaekit.load`` reads it from a path or, through ``huggingface_hub``, from a Hub repository id.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vaekit.config import Config
    from vaekit.models.base import VAE

INFO_FILE = "vaekit.json"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def model_info(
    config: Config, model: VAE, steps: int | None, metrics: dict[str, float], scaling: dict[str, float] | None = None
) -> dict[str, Any]:
    """What a model folder says about itself (also what ``vaekit info`` prints)."""
    import torch

    from vaekit import __version__

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
        "data": {"source": data.source, "fingerprint": data.fingerprint, "image_size": data.image_size},
        "steps": steps,
        "final_metrics": metrics,
        "latent_scaling": scaling or {},
    }


def write_model_card(
    folder: Path,
    config: Config,
    model: VAE,
    steps: int | None,
    metrics: dict[str, float] | None = None,
    scaling: dict[str, float] | None = None,
) -> None:
    """``vaekit.json`` and ``README.md`` beside the weights (``scaling``: the latents' scaling and
    shift factors over the training data, see ``evaluation.likelihood.latent_scaling``)."""
    info = model_info(config, model, steps, metrics or {}, scaling)
    (folder / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    rows = "\n".join(f"| {k} | {v:.6g} |" for k, v in info["final_metrics"].items()) or "| (none recorded) | |"
    (folder / "README.md").write_text(
        "---\nlibrary_name: vaekit\ntags:\n- vaekit\n- variational-autoencoder\n- image-generation\n---\n\n"
        f"# {info['architecture']} VAE trained with vaekit\n\n"
        f"- objective: {info['objective']}, likelihood: {info['likelihood']}\n"
        f"- parameters: {info['parameters']:,}; latent shape {info['latent_shape']}; data shape {info['data_shape']}\n"
        f"- data: {info['data']['source']}"
        + (f" (fingerprint {info['data']['fingerprint']})" if info["data"]["fingerprint"] else "")
        + f"\n- steps: {steps}\n- vaekit {info['vaekit_version']}, torch {info['torch_version']}\n\n"
        "## Final held-out metrics\n\n| metric | value |\n|---|---|\n"
        f'{rows}\n\n## Use\n\n```python\nimport vaekit\nmodel = vaekit.load("THIS_FOLDER_OR_HUB_ID")\n'
        "images = model.generate(16)  # (16, C, H, W) in [0, 1]\n```\n"
    )


def read_info(folder: Path) -> dict[str, Any]:
    path = folder / INFO_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (ValueError, OSError):
        return {}


def save_pretrained(model: VAE, folder: Path) -> Path:
    """Weights, config and model card of ``model`` (it must carry ``model.config``) into ``folder``."""
    from vaekit.training.checkpoint import save_weights

    config = getattr(model, "config", None)
    if config is None:
        raise ValueError("save_pretrained needs a model with a config: one from vaekit.load or vaekit.train")
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(model, folder)
    config.to_yaml(folder / "config.yaml")
    previous = getattr(model, "info", {}) or {}
    write_model_card(
        folder, config, model, previous.get("steps"), previous.get("final_metrics"), previous.get("latent_scaling")
    )
    return folder


def looks_like_hub_id(text: str) -> bool:
    return bool(_HUB_ID.match(text)) and not Path(text).exists()


def hub_snapshot(repo_id: str) -> Path:
    """A local copy of a Hub model repository (from the cache when offline)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError as err:
        raise ValueError(f"{repo_id}: loading from the Hub needs huggingface_hub: pip install 'vaekit[hub]'") from err
    try:
        return Path(snapshot_download(repo_id, allow_patterns=["*.safetensors", "*.yaml", "*.json", "*.md"]))
    except Exception as err:  # network, auth, not found: one line
        raise ValueError(f"{repo_id}: not a local folder, and the Hub could not provide it ({err})") from err


def push_to_hub(folder: Path, repo_id: str, private: bool = False) -> str:
    """Upload a model folder to the Hub; returns the repository URL."""
    try:
        from huggingface_hub import HfApi
    except ImportError as err:
        raise ValueError("vaekit push needs huggingface_hub: pip install 'vaekit[hub]'") from err
    api = HfApi()
    url = api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message="Upload vaekit model")
    return str(url)


def describe(path: str, trust_code: bool = False) -> dict[str, Any]:
    """``vaekit info``: what a run, model folder or Hub id holds."""
    import csv

    from vaekit import __version__
    from vaekit.api import load
    from vaekit.training.run_dir import RunDir

    model = load(path, trust_code=trust_code)
    info = dict(model.info) if model.info else model_info(model.config, model, None, {})
    run = RunDir(Path(path))
    if run.metrics.is_file():
        with open(run.metrics, newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if row.get("step", "").isdigit()]
        if rows:
            info["steps"] = info.get("steps") or int(rows[-1]["step"])
            val = [row for row in rows if row.get("split") == "val"]
            if val and not info.get("final_metrics"):
                info["final_metrics"] = {k: float(v) for k, v in val[-1].items() if v and _is_number(v)}
    info["loaded_with_vaekit"] = __version__
    return info


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
