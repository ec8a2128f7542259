"""Latent kinds: what sits between encoder and decoder (``model.latent``).

A latent kind is an ``nn.Module`` (a ``Bottleneck``) that turns the encoder's outputs into a
posterior: the diagonal Gaussian of a VAE (the default), a deterministic point (a plain
autoencoder), or a quantizer (``models/quantizers.py``: a tokenizer). Every architecture that
declares the ``latent-kinds`` capability builds its encoder head with as many outputs per latent
element as the kind asks for (``parameters``: 2 for mean and log-variance, 1 otherwise).

A posterior has ``mean`` (the point the latent is read as: ``embed``, reconstructions, samplers),
``sample()`` (what the decoder sees in training), ``kl_per_dim()`` (the rate term of the ELBO),
``auxiliary_loss`` (a quantizer's commitment or entropy loss, added to the objective as it is) and
``logs()`` (per-step health numbers, e.g. code usage). Capabilities say what else a kind supports,
and features that need one refuse the others in one line (``require_latent``):

- ``gaussian``: mean and log-variance of a diagonal Gaussian (IWAE, active units, Soft-IntroVAE).
- ``prior``: ``prior_sample`` draws from the ELBO's prior (N(0, I); uniform codes for a quantizer).
- ``continuous``: latents are points of R^d that an ex-post density (the Gaussian mixture) models.
- ``tokens``: the latent is a grid of integer codes (``tokenize`` / ``detokenize``, codebook health).
"""

from __future__ import annotations

import torch
from torch import distributions, nn

from vaekit import noise
from vaekit.config import ConfigError, ModelConfig
from vaekit.registry import Registry

LATENTS: Registry = Registry(
    "latent kind",
    "model.latent",
    capabilities=("gaussian", "prior", "continuous", "tokens"),
    section="model",
    declares=("parameters",),
)


class DiagonalGaussian:
    """q(z|x) = N(mean, diag(exp(logvar))) over flat ``(B, D)`` or spatial ``(B, C, H, W)`` latents."""

    auxiliary_loss = None

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor) -> None:
        self.mean = mean
        self.logvar = logvar.clamp(-30.0, 20.0)

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def sample(self, temperature: float = 1.0) -> torch.Tensor:
        """A reparameterised draw (gradients flow to mean and logvar)."""
        return self.mean + temperature * self.std * noise.randn_like(self.std)

    def kl_per_dim(self) -> torch.Tensor:
        """KL(q || N(0, I)) per latent element, same shape as ``mean``; always float32, because in
        bf16 the terms cancel so badly that the result can come out negative."""
        mean, logvar = self.mean.float(), self.logvar.float()
        return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar)

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, I)) per sample, summed over latent elements: ``(B,)``."""
        return self.kl_per_dim().flatten(1).sum(1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x) per sample: ``(B,)``."""
        return self.distribution.log_prob(z)

    @property
    def distribution(self) -> distributions.Independent:
        """The same posterior as a ``torch.distributions`` object."""
        mean, std = self.mean.float(), self.std.float()
        return distributions.Independent(distributions.Normal(mean, std), mean.dim() - 1)

    def logs(self) -> dict[str, torch.Tensor]:
        return {}


class Point:
    """A deterministic latent: ``mean`` is the encoder's output and every draw is that point; it has
    no rate term (``kl`` is zero: the bound of a plain autoencoder is not an ELBO)."""

    auxiliary_loss = None

    def __init__(self, z: torch.Tensor) -> None:
        self.mean = z

    def sample(self, temperature: float = 1.0) -> torch.Tensor:
        return self.mean

    def kl_per_dim(self) -> torch.Tensor:
        return torch.zeros_like(self.mean, dtype=torch.float32)

    def kl(self) -> torch.Tensor:
        return self.kl_per_dim().flatten(1).sum(1)

    def logs(self) -> dict[str, torch.Tensor]:
        return {}


class Bottleneck(nn.Module):
    """The base of latent kinds: ``posterior(*encoder_outputs)``; ``logs`` names what
    ``posterior.logs()`` reports each training step (columns of metrics.csv)."""

    logs: tuple[str, ...] = ()
    name = ""

    def posterior(self, *outputs: torch.Tensor):
        raise NotImplementedError

    def prior_sample(
        self, n: int, latent_shape: tuple[int, ...], temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``n`` latents from the prior, on the CPU."""
        raise ConfigError(
            f"model.latent {self.name}: no prior to draw from; fit a sampler first (vaekit fit-sampler RUN)"
        )


@LATENTS.register(
    "gaussian",
    summary="a diagonal Gaussian posterior and a N(0, I) prior: a VAE (the default)",
    capabilities={"gaussian", "prior", "continuous"},
    parameters=2,
)
class GaussianLatent(Bottleneck):
    """No parameters of its own: the encoder gives mean and log-variance."""

    name = "gaussian"

    def posterior(self, *outputs: torch.Tensor) -> DiagonalGaussian:
        if len(outputs) != 2:
            raise TypeError(f"a Gaussian latent needs the encoder's (mean, logvar); it gave {len(outputs)} tensors")
        return DiagonalGaussian(*outputs)

    def prior_sample(self, n, latent_shape, temperature=1.0, generator=None):
        return torch.randn((n, *latent_shape), generator=generator, device="cpu") * temperature


@LATENTS.register(
    "deterministic",
    summary="a plain autoencoder: the encoder's output is the latent (sample with a fitted sampler)",
    capabilities={"continuous"},
    parameters=1,
)
class DeterministicLatent(Bottleneck):
    name = "deterministic"

    def posterior(self, *outputs: torch.Tensor) -> Point:
        return Point(outputs[0])


def latent_entry(config: ModelConfig):
    """The registry entry of ``config.latent``."""
    return LATENTS.get(config.latent)


def latent_parameters(config: ModelConfig) -> int:
    """How many tensors the encoder gives per latent element for ``config.latent`` (heads' width)."""
    return int(latent_entry(config).declares.get("parameters", 1))


def create_bottleneck(config: ModelConfig, latent_shape: tuple[int, ...]) -> Bottleneck:
    """The latent kind ``config.latent`` for latents of ``latent_shape`` (per sample)."""
    entry = latent_entry(config)
    options = getattr(config, entry.options_key.split(".", 1)[1]) if entry.options else None
    bottleneck = entry.factory(options, latent_shape) if entry.options else entry.factory()
    bottleneck.name = entry.name
    return bottleneck


def latent_kind(model: nn.Module) -> str:
    """The name of ``model``'s latent kind (a model made before latent kinds is Gaussian)."""
    return getattr(getattr(model, "bottleneck", None), "name", "gaussian") or "gaussian"


def latent_has(model: nn.Module, capability: str) -> bool:
    return LATENTS.get(latent_kind(model)).has(capability)


def require_latent(model: nn.Module, capability: str, what: str) -> None:
    """One ``ConfigError`` when ``model``'s latent kind lacks ``capability`` (``what`` needs it)."""
    if not latent_has(model, capability):
        holders = [entry.name for entry in LATENTS if entry.has(capability)]
        raise ConfigError(
            f"{what} needs a latent kind with {capability} ({', '.join(holders)}); this model's is {latent_kind(model)}"
        )
