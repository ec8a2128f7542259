"""What the web page asks of a model, as plain methods: latents in, PNG/GIF bytes out.

Latents travel as flat lists of floats (the page keeps them; the server keeps no session), images
as PNG bytes. One lock serialises model calls: requests arrive on many threads, and torch's own
threads already use every core for one batch.
"""

from __future__ import annotations

import io
import math
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vaekit import api
from vaekit.data import load_dataset
from vaekit.explore.attributes import AttributeVectors, edit_latent
from vaekit.explore.grids import to_uint8
from vaekit.explore.interpolation import MODES, interpolate, save_gif
from vaekit.models.base import VAE


class LatentError(ValueError):
    """A latent or option the model cannot take (the page gets a 422 with this message)."""


def png_bytes(image: torch.Tensor) -> bytes:
    """One ``(C, H, W)`` [0, 1] image as PNG."""
    (array,) = to_uint8(image[None])
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(buffer, format="PNG")
    return buffer.getvalue()


class Explorer:
    """A trained model, its saved attribute vectors and (lazily) a few of its dataset's images."""

    def __init__(
        self, run: Path | str, device: str = "cpu", examples: int = 8, sampler: str | None = None, decoder=None
    ) -> None:
        self.run = Path(run)
        folder = api.model_folder(run)
        self.model: VAE = api.load(run, device)  # drawing from the sampler its card names, or the prior
        if sampler is not None:
            api.attach_sampler(self.model, folder, sampler)
        if decoder is not None:  # a distilled preview decoder of the same latents (vaekit distill)
            self.model = api.use_decoder(self.model, api.load(decoder, device))
        self.config = self.model.config
        self.latent_size = math.prod(self.model.latent_shape)
        try:
            self.vectors: AttributeVectors | None = AttributeVectors.load(folder)
        except FileNotFoundError:
            self.vectors = None
        if self.vectors is not None:  # a vector that does not fit the latent is left out, not a 500 later
            wrong = [n for n, v in self.vectors.vectors.items() if v.numel() != self.latent_size]
            for name in wrong:
                del self.vectors.vectors[name]
            if wrong:
                warnings.warn(
                    f"attribute vector(s) {', '.join(wrong)} do not fit this model's latent; ignored", stacklevel=2
                )
        self._lock = threading.Lock()
        self._examples: list[torch.Tensor] | None = None
        self._example_count = examples

    @property
    def attributes(self) -> list[str]:
        return sorted(self.vectors.vectors) if self.vectors else []

    def info(self) -> dict:
        channels, size, _ = self.model.image_shape
        return {
            "run": self.run.name,
            "architecture": self.config.model.arch,
            "image_size": size,
            "channels": channels,
            "latent_shape": list(self.model.latent_shape),
            "latent_size": self.latent_size,
            "attributes": self.attributes,
            "interpolation_modes": sorted(MODES),
        }

    # ------------------------------------------------------------------ conversions
    def latent(self, values: list[float]) -> torch.Tensor:
        if len(values) != self.latent_size:
            raise LatentError(f"a latent of this model has {self.latent_size} numbers, got {len(values)}")
        z = torch.tensor(values, dtype=torch.float64)
        if not torch.isfinite(z).all():
            raise LatentError("the latent holds NaN or infinite numbers")
        if z.abs().max() > 1e4:
            raise LatentError("the latent holds numbers beyond +-10000 (a prior sample is within about +-5)")
        z = z.float()
        return z.view(self.model.latent_shape)

    @staticmethod
    def flat(z: torch.Tensor) -> list[float]:
        return [round(v, 5) for v in z.flatten().tolist()]

    @torch.no_grad()
    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(N, *latent_shape)`` -> ``(N, C, H, W)`` images on the CPU."""
        device = next(self.model.parameters()).device
        with self._lock:
            return self.model.to_image(z.to(device)).cpu()

    # ------------------------------------------------------------------ what the page asks
    def samples(self, count: int, temperature: float, seed: int) -> tuple[list[bytes], list[list[float]]]:
        generator = torch.Generator().manual_seed(seed)
        z = self.model.draw_latents(count, temperature, generator).cpu()
        return [png_bytes(image) for image in self._decode(z)], [self.flat(v) for v in z]

    @torch.no_grad()
    def encode(self, image: torch.Tensor) -> tuple[bytes, bytes, list[float]]:
        """The image as the model sees it, its reconstruction, and its latent (posterior mean)."""
        device = next(self.model.parameters()).device
        with self._lock:
            z = self.model.embed(image[None].to(device)).cpu()
        (reconstruction,) = self._decode(z)
        return png_bytes(image), png_bytes(reconstruction), self.flat(z[0])

    def decode(self, latent: list[float]) -> bytes:
        return png_bytes(self._decode(self.latent(latent)[None])[0])

    @staticmethod
    def _check_mode(mode: str) -> str:
        if mode not in MODES:
            raise LatentError(f"unknown interpolation mode {mode!r}: use {' or '.join(sorted(MODES))}")
        return mode

    def interpolate(self, a: list[float], b: list[float], t: float, mode: str) -> bytes:
        z = MODES[self._check_mode(mode)](self.latent(a), self.latent(b), torch.tensor([float(t)]))
        return png_bytes(self._decode(z)[0])

    def gif(self, a: list[float], b: list[float], mode: str, frames: int) -> bytes:
        images = self._decode(interpolate(self.latent(a), self.latent(b), frames, self._check_mode(mode)))
        buffer = io.BytesIO()
        save_gif(images, buffer, scale=max(1, 128 // images.shape[-1]))
        return buffer.getvalue()

    def edit(self, latent: list[float], strengths: dict[str, float]) -> bytes:
        if self.vectors is None:
            raise LatentError("this model has no attribute vectors: compute them with `vaekit attributes RUN`")
        unknown = sorted(set(strengths) - set(self.vectors.vectors))
        if unknown:
            raise LatentError(f"no attribute vector {', '.join(unknown)}; available: {', '.join(self.attributes)}")
        return png_bytes(self._decode(edit_latent(self.latent(latent), self.vectors, strengths)[None])[0])

    def traverse(
        self, latent: list[float], values: list[float], dimension: int | None, attribute: str | None
    ) -> list[bytes]:
        """Decodes of ``latent`` with one dimension set to each value, or moved along one attribute."""
        z = self.latent(latent)
        if (dimension is None) == (attribute is None):
            raise LatentError("traverse one thing: give a dimension or an attribute")
        frames = z.expand(len(values), *z.shape).clone()
        steps = torch.tensor(values, dtype=torch.float32)
        if dimension is not None:
            if not 0 <= dimension < self.latent_size:
                raise LatentError(f"dimension {dimension} is outside 0..{self.latent_size - 1}")
            frames.view(len(values), -1)[:, dimension] = steps
        else:
            if self.vectors is None or attribute not in self.vectors.vectors:
                raise LatentError(f"no attribute vector {attribute!r}; available: {', '.join(self.attributes)}")
            direction = self.vectors[attribute].to(frames.dtype)
            frames = frames + steps.view(-1, *([1] * z.dim())) * direction
        return [png_bytes(image) for image in self._decode(frames)]

    def examples(self) -> list[bytes]:
        """A few held-out images of the training data, when the data can be found here."""
        if self._examples is None:
            try:
                data = self.config.data
                held_out = load_dataset(data).split("val", data.val_fraction, data.seed)
                images = held_out.images[: self._example_count]
                self._examples = list(torch.from_numpy(np.ascontiguousarray(images)).float() / 255.0)
            except (OSError, ValueError):
                self._examples = []
        return [png_bytes(image) for image in self._examples]

    def example(self, index: int) -> torch.Tensor:
        self.examples()
        if not 0 <= index < len(self._examples or []):
            raise LatentError(f"there is no example {index}")
        return self._examples[index]
