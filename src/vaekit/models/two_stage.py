"""A second-stage VAE as the ex-post sampler (Dai & Wipf 2019, "Diagnosing and enhancing VAE models").

The first VAE's posterior means (standardised per dimension) are modelled by a second, small VAE of
fully connected layers whose Gaussian decoder learns its variance (their gamma): new latents are
its decodes of N(0, I) draws. Fitted by ``vaekit fit-sampler --sampler two-stage`` (``max_time``,
``steps``), stored beside the model's weights (``sampler-two-stage.safetensors``). Its held-out
log-density (an importance-sampled bound, per latent) compares with the Gaussian mixture's exact
one: the end of training keeps whichever models held-out latents better (``training/sampler_fit.py``).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from vaekit.io.files import write_atomically
from vaekit.models.mlp import MLPDecoder, MLPEncoder
from vaekit.models.samplers import FILE, SAMPLERS, posterior_means
from vaekit.schema import MAX_LATENT

NAME = "two-stage"
LOG_2PI = math.log(2 * math.pi)


class SecondStage(torch.nn.Module):
    """u (standardised latents, D) -> (mean, logvar) of z2 (D) -> the mean of u, with a learned log-sigma."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.dim, self.hidden = dim, hidden
        self.encoder = MLPEncoder(dim, dim, hidden, layers=2)
        self.decoder = MLPDecoder(dim, dim, hidden, layers=2)
        self.log_sigma = torch.nn.Parameter(torch.zeros(()))  # Dai & Wipf's learned decoder variance

    def loss(self, u: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The negative ELBO per point (nats), averaged (its posterior draw from ``generator``)."""
        mean, logvar = self.encoder(u)
        z = mean + torch.randn(mean.shape, generator=generator) * (0.5 * logvar).exp()
        return (self._nll(u, self.decoder(z)) + 0.5 * (mean.square() + logvar.exp() - 1 - logvar).sum(1)).mean()

    def _nll(self, u: torch.Tensor, location: torch.Tensor) -> torch.Tensor:
        sigma = self.log_sigma.clamp(min=-6.0)
        return (0.5 * ((u - location) / sigma.exp()).square() + sigma + 0.5 * LOG_2PI).sum(1)

    @torch.no_grad()
    def log_density(self, u: torch.Tensor, k: int = 32, generator: torch.Generator | None = None) -> torch.Tensor:
        """An importance-sampled lower bound on log p(u) per point (k samples of q(z2|u))."""
        mean, logvar = self.encoder(u)
        std = (0.5 * logvar).exp()
        eps = torch.randn((k, *mean.shape), generator=generator)
        z = mean + std * eps
        log_q = (-0.5 * (eps.square() + LOG_2PI) - std.log()).sum(-1)
        log_pz = (-0.5 * (z.square() + LOG_2PI)).sum(-1)
        log_px = -self._nll(u.expand(k, *u.shape).flatten(0, 1), self.decoder(z.flatten(0, 1))).view(k, -1)
        return torch.logsumexp(log_px + log_pz - log_q, 0) - math.log(k)


@SAMPLERS.register(
    NAME,
    summary="a second-stage VAE on the training latents (Dai & Wipf; vaekit fit-sampler --sampler two-stage)",
    needs=("continuous",),
    tiny={"steps": 3},
)
class TwoStageSampler:
    """A fitted ``SecondStage`` network and the standardisation of the latents it was fitted on."""

    def __init__(self, network: SecondStage, shift: torch.Tensor, scale: torch.Tensor, meta: dict) -> None:
        self.network, self.shift, self.scale, self.meta = network.eval(), shift, scale, meta
        self.latent_shape: tuple[int, ...] = tuple(meta["latent_shape"])

    def draw(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` latents (CPU): the second stage's decodes of N(0, temperature^2 I) draws."""
        with torch.no_grad():
            z2 = torch.randn((n, self.network.dim), generator=generator) * temperature
            return (self.network.decoder(z2) * self.scale + self.shift).view(n, *self.latent_shape)

    def log_prob(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A lower bound on the log-density of latents ``(N, *latent_shape)`` (nats)."""
        u = (z.flatten(1).float() - self.shift) / self.scale
        return self.network.log_density(u, generator=generator) - self.scale.log().sum()

    def describe(self) -> str:
        return (
            f"a second-stage VAE ({self.network.dim}-d, {self.network.hidden} hidden units, "
            f"{self.meta.get('steps', 0)} steps) on {self.meta.get('fitted_on', 0):,} posterior means"
        )

    def save(self, folder: Path) -> Path:
        tensors = {f"network.{k}": v.detach().contiguous() for k, v in self.network.state_dict().items()}
        tensors |= {"shift": self.shift.contiguous(), "scale": self.scale.contiguous()}
        meta = {**self.meta, "dim": self.network.dim, "hidden": self.network.hidden}
        data = save(tensors, metadata={"vaekit_sampler": json.dumps(meta)})
        return write_atomically(folder / FILE.format(name=NAME), data)

    @classmethod
    def load(cls, folder: Path) -> TwoStageSampler:
        path = Path(folder) / FILE.format(name=NAME)
        if not path.is_file():
            raise FileNotFoundError(f"{folder}: no fitted sampler ({path.name}); run `vaekit fit-sampler` first")
        try:
            with safe_open(str(path), "pt") as handle:
                meta = json.loads((handle.metadata() or {}).get("vaekit_sampler", "{}"))
            dim, hidden = int(meta["dim"]), int(meta["hidden"])
            if not (1 <= dim <= MAX_LATENT and 1 <= hidden <= 4 * MAX_LATENT) or math.prod(meta["latent_shape"]) != dim:
                raise ValueError("sizes out of range")
            tensors = load_file(str(path))
            network = SecondStage(dim, hidden)
            network.load_state_dict({k[len("network.") :]: v for k, v in tensors.items() if k.startswith("network.")})
            shift, scale = tensors["shift"], tensors["scale"]
            if shift.shape != (dim,) or scale.shape != (dim,) or not (scale > 0).all():
                raise ValueError("a standardisation of the wrong shape")
        except (KeyError, TypeError, ValueError, RuntimeError, SafetensorError, OSError) as err:
            raise ValueError(f"{path}: not a usable second-stage sampler ({str(err).splitlines()[0]})") from None
        return cls(network, shift, scale, meta)

    @classmethod
    def fit_model(cls, model, images: np.ndarray, seed: int = 0, max_time: float = 60.0, steps: int = 20_000):
        """The second stage of the posterior means of ``images`` under ``model``."""
        return cls.fit(posterior_means(model, images, batch_size=256), seed, max_time, steps)

    @classmethod
    def fit(
        cls, latents: torch.Tensor, seed: int = 0, max_time: float = 60.0, steps: int = 20_000, batch_size: int = 128
    ) -> TwoStageSampler:
        """Fit on latents ``(N, *latent_shape)`` for ``steps`` Adam steps or ``max_time`` seconds."""
        flat = latents.flatten(1).float()
        shift, scale = flat.mean(0), flat.std(0).clamp_min(1e-6)
        u = (flat - shift) / scale
        dim = u.shape[1]
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            network = SecondStage(dim, hidden=min(1024, max(64, 4 * dim)))
            optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
            generator = torch.Generator().manual_seed(seed)
            started, done = time.monotonic(), 0
            network.train()
            while done < steps and time.monotonic() - started < max_time:
                batch = u[torch.randint(len(u), (min(batch_size, len(u)),), generator=generator)]
                loss = network.loss(batch, generator)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                done += 1
        meta = {"latent_shape": list(latents.shape[1:]), "fitted_on": len(flat), "steps": done}
        return cls(network, shift, scale, meta)
