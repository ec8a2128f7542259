"""A toy ex-post sampler: one diagonal Gaussian fitted on the training latents."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from vaekit.models.samplers import SAMPLERS

FILE = "sampler-toy-diagonal.safetensors"


@SAMPLERS.register(
    "toy-diagonal", summary="one diagonal Gaussian on the training latents (a test's toy)", needs=("continuous",)
)
@dataclass
class DiagonalGaussian:
    mean: torch.Tensor
    std: torch.Tensor
    latent_shape: tuple[int, ...]

    @classmethod
    def fit_model(cls, model, images, seed: int = 0) -> DiagonalGaussian:
        from vaekit.models.samplers import posterior_means

        return cls.fit(posterior_means(model, images), seed)

    def describe(self) -> str:
        return f"one diagonal Gaussian over {self.mean.numel()} dimensions"

    @classmethod
    def fit(cls, latents: torch.Tensor, seed: int = 0) -> DiagonalGaussian:
        flat = latents.flatten(1).double()
        return cls(flat.mean(0), flat.std(0).clamp_min(1e-3), tuple(latents.shape[1:]))

    def draw(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        eps = torch.randn((n, self.mean.numel()), generator=generator, dtype=torch.float64)
        return (self.mean + temperature * self.std * eps).float().view(n, *self.latent_shape)

    def save(self, folder: Path) -> Path:
        path = Path(folder) / FILE
        save_file({"mean": self.mean, "std": self.std}, str(path), {"shape": json.dumps(self.latent_shape)})
        return path

    @classmethod
    def load(cls, folder: Path) -> DiagonalGaussian:
        path = Path(folder) / FILE
        if not path.is_file():
            raise FileNotFoundError(f"{folder}: no {FILE}")
        with safe_open(str(path), "pt") as handle:
            shape = tuple(json.loads(handle.metadata()["shape"]))
        tensors = load_file(str(path))
        return cls(tensors["mean"], tensors["std"], shape)
