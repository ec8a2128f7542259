"""Where new latents come from: the prior N(0, I), or an ex-post sampler fitted on the posterior
means of the training data (Ghosh et al. 2020; pythae's GMM sampler), which draws where images
were encoded and not in the prior's holes.

A fitted sampler is a ``GaussianMixture`` (full covariances up to ``FULL_COVARIANCE_MAX_DIM``
latent dimensions, diagonal above), fitted with scikit-learn, its number of components chosen by
BIC unless given, and stored as safetensors beside the model's weights (``sampler-gmm.safetensors``).
Drawing and densities use ``torch.distributions``; a seed gives the same latents on any device.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from vaekit.data.loader import BatchLoader, within
from vaekit.data.progress import JobProgress
from vaekit.io.card import SAMPLER_FILE
from vaekit.io.files import write_atomically
from vaekit.models.latents import latent_has, require_latent
from vaekit.optional import require
from vaekit.registry import Registry
from vaekit.schema import ConfigError

if TYPE_CHECKING:
    from vaekit.models.base import VAE

FILE = SAMPLER_FILE
FULL_COVARIANCE_MAX_DIM = 64  # latent dimensions up to which components have full covariances
COMPONENT_CANDIDATES = (1, 2, 4, 8, 16, 32, 64)  # tried by BIC when the count is not given
MAX_COMPONENTS = 1024
MIN_POINTS_PER_COMPONENT = 10


# Where new latents come from: an entry's factory has ``fit_model(model, images, seed, **options)`` and
# ``load(folder)`` (the fitted sampler saved beside a model, with ``latent_shape``, ``draw(n, temperature,
# generator)`` and ``save(folder)``; ``attach(model)`` where it needs the model), or is None for the prior.
# needs: the latent-kind capabilities it needs (models/latents.py)
SAMPLERS: Registry = Registry("sampler", "--sampler", declares=("needs",))
SAMPLERS.add("prior", None, summary="the model's prior: N(0, I), or uniform codes for a tokenizer")


@SAMPLERS.register(
    "gmm", summary="a Gaussian mixture fitted on the training latents (vaekit fit-sampler)", needs=("continuous",)
)
@dataclass
class GaussianMixture:
    """Weights ``(K,)``, means ``(K, D)`` and ``scale_tril`` ``(K, D, D)`` (full) or ``(K, D)``
    (diagonal standard deviations) over flattened latents of ``latent_shape``."""

    weights: torch.Tensor
    means: torch.Tensor
    scale_tril: torch.Tensor
    latent_shape: tuple[int, ...]
    bic: float | None = None
    fitted_on: int = 0

    @property
    def full(self) -> bool:
        return self.scale_tril.dim() == 3

    def distribution(self) -> torch.distributions.MixtureSameFamily:
        if self.full:
            components = torch.distributions.MultivariateNormal(self.means, scale_tril=self.scale_tril)
        else:
            components = torch.distributions.Independent(torch.distributions.Normal(self.means, self.scale_tril), 1)
        return torch.distributions.MixtureSameFamily(torch.distributions.Categorical(self.weights), components)

    def log_prob(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Log density of latents ``(N, *latent_shape)`` under the mixture (nats; exact, no draws)."""
        return self.distribution().log_prob(z.flatten(1).double())

    def draw(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` latents ``(n, *latent_shape)`` on the CPU: a component by its weight, then its
        Gaussian, its spread scaled by ``temperature``."""
        component = torch.multinomial(self.weights.float(), n, replacement=True, generator=generator)
        eps = torch.randn((n, self.means.shape[1]), generator=generator, dtype=torch.float64)
        if self.full:
            spread = torch.einsum("nij,nj->ni", self.scale_tril[component], eps)
        else:
            spread = self.scale_tril[component] * eps
        return (self.means[component] + temperature * spread).float().view(n, *self.latent_shape)

    def save(self, folder: Path) -> Path:
        meta = {"latent_shape": list(self.latent_shape), "bic": self.bic, "fitted_on": self.fitted_on}
        tensors = {"weights": self.weights, "means": self.means, "scale_tril": self.scale_tril}
        data = save({k: v.contiguous() for k, v in tensors.items()}, metadata={"vaekit_sampler": json.dumps(meta)})
        return write_atomically(folder / FILE.format(name="gmm"), data)

    @classmethod
    def fit_model(cls, model, images: np.ndarray, seed: int = 0, components: int | None = None) -> GaussianMixture:
        """The mixture of the posterior means of ``images`` under ``model``."""
        return fit_gmm(posterior_means(model, images, batch_size=256), components, seed)

    def describe(self) -> str:
        covariances = "full" if self.full else "diagonal"
        return (
            f"a {len(self.weights)}-component Gaussian mixture ({covariances} covariances, BIC {self.bic:.6g}) "
            f"on {self.fitted_on:,} posterior means"
        )

    @classmethod
    def fit(cls, latents: torch.Tensor, seed: int = 0, components: int | None = None) -> GaussianMixture:
        """The mixture of ``latents`` (see ``fit_gmm``): what ``vaekit fit-sampler`` saves."""
        return fit_gmm(latents, components, seed)

    @classmethod
    def load(cls, folder: Path) -> GaussianMixture:
        path = folder / FILE.format(name="gmm")
        if not path.is_file():
            raise FileNotFoundError(f"{folder}: no fitted sampler ({path.name}); run `vaekit fit-sampler` first")
        try:
            with safe_open(str(path), "pt") as handle:
                meta = json.loads((handle.metadata() or {}).get("vaekit_sampler", "{}"), parse_constant=float)
            tensors = load_file(str(path))
            mixture = cls(
                tensors["weights"].double(),
                tensors["means"].double(),
                tensors["scale_tril"].double(),
                tuple(int(d) for d in meta.get("latent_shape", [tensors["means"].shape[-1]])),
                meta.get("bic"),
                int(meta.get("fitted_on", 0)),
            )
        except (SafetensorError, OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
            reason = f"no tensor {err}" if isinstance(err, KeyError) else str(err).splitlines()[0][:200]
            raise ValueError(f"{path}: not a usable Gaussian-mixture sampler ({reason})") from None
        mixture.require_consistent(path)
        return mixture

    def require_consistent(self, where: object) -> None:
        """Shapes that fit one another and finite, positive numbers, or one ``ValueError``: a
        damaged or hand-made file is refused before it is drawn from."""
        k, dim = self.means.shape if self.means.dim() == 2 else (-1, -1)
        scale_shape = (k, dim, dim) if self.scale_tril.dim() == 3 else (k, dim)
        problems = [
            "means are not (K, D)" if k < 1 else "",
            "the latent shape does not match the means" if math.prod(self.latent_shape) != dim else "",
            "weights are not K positive numbers" if self.weights.shape != (k,) or not (self.weights > 0).all() else "",
            "scales are not (K, D, D) or (K, D)" if tuple(self.scale_tril.shape) != scale_shape else "",
            "a value is not finite"
            if not all(torch.isfinite(t).all() for t in (self.weights, self.means, self.scale_tril))
            else "",
        ]
        problem = next((p for p in problems if p), None)
        if problem:
            raise ValueError(f"{where}: not a usable Gaussian-mixture sampler ({problem})")


@torch.no_grad()
def posterior_means(model, images: np.ndarray, batch_size: int = 128, seconds: float | None = None) -> torch.Tensor:
    """mu of every image, ``(N, *latent_shape)`` on the CPU (in eval mode, whatever the model's mode):
    what the samplers are fitted on, attribute vectors averaged over and latent maps drawn from;
    with ``seconds``, of the images encoded within that time (the first batch always)."""
    device = next(model.parameters()).device
    loader = BatchLoader(images, batch_size, shuffle=False, drop_last=False, device=device)
    means = []
    with model.evaluating(), JobProgress("encoding the images", len(images), says_done=False) as progress:
        for batch in within(loader, seconds):
            means.append(model.embed(batch).float().cpu())
            progress.advance(len(batch))
    return torch.cat(means)


def fit_gmm(
    latents: torch.Tensor, components: int | None = None, seed: int = 0, seconds: float | None = None
) -> GaussianMixture:
    """A Gaussian mixture fitted to latents ``(N, *latent_shape)``; ``components`` None: the count
    among ``COMPONENT_CANDIDATES`` with the lowest BIC (at least 10 points per component), larger
    counts tried only while ``seconds`` have not passed (the first always)."""
    started = time.monotonic()
    mixture_module = require("sklearn.mixture", "eval", "fitting a GMM sampler")
    points = latents.flatten(1).double().cpu().numpy()
    n, dim = points.shape
    covariance = "full" if dim <= FULL_COVARIANCE_MAX_DIM else "diag"
    if components is not None and not 1 <= components <= min(MAX_COMPONENTS, n):
        raise ConfigError(
            f"a GMM sampler takes 1..{min(MAX_COMPONENTS, n)} components for {n} latents, not {components}"
        )
    candidates = [components] if components else [k for k in COMPONENT_CANDIDATES if k * MIN_POINTS_PER_COMPONENT <= n]
    best, best_bic = None, math.inf
    with JobProgress(
        "fitting the Gaussian mixture", len(candidates or [1]), unit="mixtures", says_done=False
    ) as progress:
        for k in candidates or [1]:
            if best is not None and seconds is not None and time.monotonic() - started >= seconds:
                break
            model = mixture_module.GaussianMixture(k, covariance_type=covariance, reg_covar=1e-6, random_state=seed)
            model.fit(points)
            bic = float(model.bic(points))
            if bic < best_bic:
                best, best_bic = model, bic
            progress.advance(1)
    assert best is not None
    if covariance == "full":
        scale = torch.linalg.cholesky(torch.from_numpy(best.covariances_))
    else:
        scale = torch.from_numpy(np.sqrt(best.covariances_))
    return GaussianMixture(
        torch.from_numpy(best.weights_),
        torch.from_numpy(best.means_),
        scale,
        tuple(latents.shape[1:]),
        best_bic,
        n,
    )


@torch.no_grad()
def prior_hole(draws: torch.Tensor, data_latents: torch.Tensor) -> dict:
    """How far ``draws`` (from the prior, or any sampler) fall from where data was encoded: each
    draw's distance to its nearest data latent, against the same distance for held-back data
    latents (a random half of ``data_latents`` is the reference, the other half the yardstick).

    ``nearest_distance_ratio``: median nearest-neighbour distance of the draws over that of the
    held-back latents (1: draws sit among the data; above 1: in holes). ``draws_beyond_data``: the
    share of draws farther from the data than 99 % of the held-back latents are."""
    data = data_latents.flatten(1).double()
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))  # halves at random
    reference, yardstick = data[order[0::2]], data[order[1::2]]
    if len(reference) < 2 or len(yardstick) < 1:
        raise ValueError("the prior-hole figure needs at least 3 data latents")
    own = _nearest(yardstick, reference)
    drawn = _nearest(draws.flatten(1).double(), reference)
    return {
        "nearest_distance_ratio": float(drawn.median() / own.median().clamp_min(1e-12)),
        "draws_beyond_data": float((drawn > torch.quantile(own, 0.99)).double().mean()),
    }


def _nearest(points: torch.Tensor, reference: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """Distance from each of ``points`` to its nearest row of ``reference`` (in chunks)."""
    return torch.cat([torch.cdist(part, reference).min(1).values for part in points.split(chunk)])


def attach_sampler(vae: VAE, folder: Path, sampler: str) -> VAE:
    """``vae`` with the sampler named ``sampler`` saved in ``folder`` (``prior``: none) attached."""
    entry = SAMPLERS.get(sampler, "sampler")
    kind = entry.factory
    vae.latent_sampler = None
    for need in entry.declares.get("needs", ()):
        require_latent(vae, need, f"sampler {sampler}")
    if kind is not None:
        try:
            fitted = kind.load(folder)
        except FileNotFoundError as err:
            raise ConfigError(f"{err}: vaekit fit-sampler RUN --sampler {sampler}") from None
        if hasattr(fitted, "attach"):
            fitted.attach(vae)
        if fitted.latent_shape != tuple(vae.latent_shape):
            raise ConfigError(
                f"{folder}: the sampler draws latents {fitted.latent_shape}, the model takes {vae.latent_shape}"
            )
        vae.latent_sampler = fitted
    return vae


def describe_sampler(model) -> str:
    """Where ``model``'s new latents come from, in words (the fitted sampler, or the prior)."""
    sampler = getattr(model, "latent_sampler", None)
    if sampler is None:
        return "the prior" + (" (N(0, I))" if latent_has(model, "gaussian") else "")
    return sampler.describe() if hasattr(sampler, "describe") else type(sampler).__name__
