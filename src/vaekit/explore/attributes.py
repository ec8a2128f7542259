"""Attribute vectors in latent space and portrait editing with them.

A vector is mean(mu | attribute) - mean(mu | not attribute) over a labelled set, with mu the
posterior mean (flat or spatial; the vector has the latent's shape). Editing adds signed multiples
of vectors to an image's latent and decodes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from vaekit.data.dataset import ImageDataset
from vaekit.io.files import write_atomically
from vaekit.limits import require_strength
from vaekit.models.base import VAE
from vaekit.models.samplers import posterior_means
from vaekit.schema import ConfigError

MAX_SWEEP = 256  # strengths in one --sweep strip

VECTORS_FILE = "attributes.safetensors"
COUNTS_FILE = "attributes.json"


@dataclass
class AttributeVectors:
    vectors: dict[str, torch.Tensor]  # name -> latent-shaped direction
    counts: dict[str, dict[str, int]]  # name -> {"with": n, "without": n}

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.vectors:
            raise ConfigError(f"no attribute vector {name!r}; available: {', '.join(sorted(self.vectors))}")
        return self.vectors[name]

    def save(self, folder: Path | str) -> tuple[Path, Path]:
        """The vectors and their counts beside a model, each file written whole or not at all."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        vectors = safetensors_bytes({k: v.contiguous().cpu() for k, v in self.vectors.items()})
        return (
            write_atomically(folder / VECTORS_FILE, vectors),
            write_atomically(folder / COUNTS_FILE, json.dumps(self.counts, indent=2)),
        )

    @classmethod
    def load(cls, folder: Path | str) -> AttributeVectors:
        folder = Path(folder)
        if not (folder / VECTORS_FILE).is_file():
            raise FileNotFoundError(f"no {VECTORS_FILE} in {folder}: compute them with `vaekit attributes`")
        counts = json.loads((folder / COUNTS_FILE).read_text()) if (folder / COUNTS_FILE).is_file() else {}
        return cls(load_file(str(folder / VECTORS_FILE)), counts)


def compute_attribute_vectors(
    model: VAE, data: ImageDataset, names: list[str] | None = None, batch_size: int = 128
) -> AttributeVectors:
    """Vectors for ``names`` (default: every attribute) from ``data``'s binary labels."""
    if data.labels is None or data.label_names is None or data.labels.ndim != 2:
        raise ValueError(f"{data.source}: no binary attribute labels (give a CelebA folder or --labels CSV)")
    unknown = [name for name in names or [] if name not in data.label_names]
    if unknown:
        raise ConfigError(f"unknown attribute(s) {unknown}; the labels have: {', '.join(data.label_names)}")
    means = posterior_means(model, data.images, batch_size)
    vectors, counts = {}, {}
    for name in names or data.label_names:
        column = torch.from_numpy(np.asarray(data.labels[:, data.label_names.index(name)]) > 0)
        with_it, without = int(column.sum()), int((~column).sum())
        counts[name] = {"with": with_it, "without": without}
        if with_it == 0 or without == 0:
            continue  # no contrast: no vector
        vectors[name] = means[column].mean(0) - means[~column].mean(0)
    return AttributeVectors(vectors, counts)


@torch.no_grad()
def edit_latent(z: torch.Tensor, vectors: AttributeVectors, strengths: dict[str, float]) -> torch.Tensor:
    """``z + sum(strength * vector)``; every strength a finite number within +-``MAX_STRENGTH``
    (the one check for the CLI, the Python API and the explorer)."""
    edited = z.clone()
    for name, strength in strengths.items():
        require_strength(f"strength of {name}", float(strength))
        edited = edited + strength * vectors[name].to(z.device, z.dtype)
    return edited


@torch.no_grad()
def edit_images(
    model: VAE, images: torch.Tensor, vectors: AttributeVectors, strengths: dict[str, float]
) -> torch.Tensor:
    """Edited decodes of [0, 1] images (strength 0 everywhere: the plain reconstruction)."""
    z = model.embed(images.to(next(model.parameters()).device))
    return model.to_image(edit_latent(z, vectors, strengths)).cpu()


@torch.no_grad()
def sweep_images(
    model: VAE, image: torch.Tensor, vectors: AttributeVectors, name: str, strengths: list[float]
) -> torch.Tensor:
    """One image edited along ``name`` at each strength: ``(len(strengths), C, H, W)``."""
    z = model.embed(image[None].to(next(model.parameters()).device))
    batch = torch.cat([edit_latent(z, vectors, {name: s}) for s in strengths])
    return model.to_image(batch).cpu()


@torch.no_grad()
def latent_arithmetic(model: VAE, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Decode z_A - z_B + z_C (posterior means) of three [0, 1] images."""
    z = model.embed(torch.stack([a, b, c]).to(next(model.parameters()).device))
    return model.to_image((z[0] - z[1] + z[2])[None]).cpu()


def parse_strengths(items: list[str]) -> dict[str, float]:
    """``["Smiling=1.5", "Male=-1"]`` -> {"Smiling": 1.5, "Male": -1.0}."""
    strengths = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"--attr takes NAME=STRENGTH (e.g. Smiling=1.5), not {item!r}") from None
        if not sep:
            raise ConfigError(f"--attr takes NAME=STRENGTH (e.g. Smiling=1.5), not {item!r}")
        strengths[name.strip()] = number
    return strengths


def parse_sweep(text: str) -> list[float]:
    """``"-2:2:9"`` -> nine strengths from -2 to 2."""
    parts = text.split(":")
    try:
        start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
        if len(parts) != 3:
            raise ValueError
    except (ValueError, IndexError):
        raise ConfigError(f"--sweep takes START:STOP:COUNT (e.g. -2:2:9), not {text!r}") from None
    if not 1 <= count <= MAX_SWEEP:
        raise ConfigError(f"--sweep: COUNT must be 1 to {MAX_SWEEP}, got {count}")
    require_strength("--sweep START", start)
    require_strength("--sweep STOP", stop)
    return np.linspace(start, stop, count).tolist()
