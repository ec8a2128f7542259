"""The VAE base class and its diagonal Gaussian posterior."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import distributions, nn

from vaekit import noise
from vaekit.likelihoods import Likelihood


class DiagonalGaussian:
    """q(z|x) = N(mean, diag(exp(logvar))) over flat ``(B, D)`` or spatial ``(B, C, H, W)`` latents."""

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


@dataclass
class VAEOutput:
    """What a forward pass gives: the posterior, the sampled latent and the decoder outputs."""

    posterior: DiagonalGaussian
    z: torch.Tensor
    params: torch.Tensor


class VAE(nn.Module):
    """An encoder to a diagonal Gaussian, a decoder to likelihood parameters, a N(0, I) prior.

    Subclasses build ``self.encoder`` (image -> ``(mean, logvar)``) and ``self.decoder``
    (latent -> likelihood parameters) and set ``self.latent_shape``; ``latent_groups`` names
    ranges of the flattened latent that an objective may weight separately (e.g. style levels).
    """

    encoder: nn.Module
    decoder: nn.Module
    latent_shape: tuple[int, ...]

    def __init__(self, likelihood: Likelihood, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.likelihood = likelihood
        self.image_shape = tuple(image_shape)
        self.latent_groups: list[tuple[str, int, int]] = []  # named ranges of the flattened latent

    @contextmanager
    def evaluating(self) -> Iterator[VAE]:
        """Eval mode for the block (BatchNorm uses running statistics), then the previous mode back."""
        was_training = self.training
        self.eval()
        try:
            yield self
        finally:
            self.train(was_training)

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """q(z|x) for a batch already in the likelihood's target space."""
        mean, logvar = self.encoder(x)
        return DiagonalGaussian(mean, logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters (e.g. logits) for latents ``z``."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> VAEOutput:
        posterior = self.encode(x)
        z = posterior.sample()
        return VAEOutput(posterior, z, self.decode(z))

    def prior_sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` latents from N(0, temperature^2 I)."""
        device = next(self.parameters()).device
        noise = torch.randn((n, *self.latent_shape), generator=generator, device="cpu")
        return (noise * temperature).to(device)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images in [0, 1] decoded from prior samples."""
        return self.likelihood.mean(self.decode(self.prior_sample(n, temperature, generator)))

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Posterior means of [0, 1] images."""
        return self.encode(self.likelihood.prepare(images)).mean

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Decodes of the posterior means of [0, 1] images, as [0, 1] images."""
        return self.likelihood.mean(self.decode(self.embed(images)))

    @torch.no_grad()
    def to_image(self, z: torch.Tensor) -> torch.Tensor:
        """Decode latents to [0, 1] images."""
        return self.likelihood.mean(self.decode(z))
