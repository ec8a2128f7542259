"""The VAE base class: encoder -> latent kind (a posterior) -> decoder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from vaekit.likelihoods import Likelihood
from vaekit.models.latents import Bottleneck, DiagonalGaussian, GaussianLatent, require_latent
from vaekit.schema import MAX_LATENT, positive


@dataclass(frozen=True)
class ModulesConfig:
    """Users' own encoder and decoder (``model.arch: modules``, made by ``VAE.from_modules``)."""

    encoder: str = ""  # package.module:Class, rebuilt with encoder_args (only with trust_code)
    decoder: str = ""
    encoder_args: dict[str, Any] = field(default_factory=dict)
    decoder_args: dict[str, Any] = field(default_factory=dict)
    latent_shape: list[int] = positive([], MAX_LATENT)


if TYPE_CHECKING:
    from vaekit.config import Config


@dataclass
class VAEOutput:
    """What a forward pass gives: the posterior, the sampled latent and the decoder outputs."""

    posterior: Any  # DiagonalGaussian, or the posterior of the model's latent kind
    z: torch.Tensor
    params: torch.Tensor


class VAE(nn.Module):
    """An encoder, a latent kind (``bottleneck``: a diagonal Gaussian with a N(0, I) prior unless
    ``model.latent`` says otherwise, see ``models/latents.py``) and a decoder to likelihood parameters.

    Subclasses build ``self.encoder`` (image -> the latent kind's parameters: ``(mean, logvar)`` for
    the Gaussian) and ``self.decoder`` (latent -> likelihood parameters) and set
    ``self.latent_shape``; ``latent_groups`` names ranges of the flattened latent that an objective
    may weight separately (e.g. style levels).
    """

    encoder: nn.Module
    decoder: nn.Module
    latent_shape: tuple[int, ...]

    def __init__(self, likelihood: Likelihood, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.likelihood = likelihood
        self.image_shape = tuple(image_shape)
        self.latent_groups: list[tuple[str, int, int]] = []  # named ranges of the flattened latent
        self.bottleneck: Bottleneck = GaussianLatent()  # create_model sets the configured latent kind

    encoder_frozen = False  # decoder-only fine-tuning: the encoder stays in eval mode
    config: Config | None = None  # what it was built from: set by create_model, load and train
    info: dict | None = None  # what its folder says about it (vaekit.load)
    latent_sampler: Any = None  # where new latents come from when not the prior (models/samplers.py)

    def train(self, mode: bool = True) -> VAE:
        super().train(mode)
        if self.encoder_frozen:
            self.encoder.eval()
        return self

    @contextmanager
    def evaluating(self) -> Iterator[VAE]:
        """Eval mode for the block (BatchNorm uses running statistics), then the previous mode back."""
        was_training = self.training
        self.eval()
        try:
            yield self
        finally:
            self.train(was_training)

    def encode(self, x: torch.Tensor):
        """q(z|x) for a batch already in the likelihood's target space (the latent kind's posterior)."""
        outputs = self.encoder(x)
        return self.bottleneck.posterior(*(outputs if isinstance(outputs, tuple | list) else (outputs,)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters (e.g. logits) for latents ``z``."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> VAEOutput:
        posterior = self.encode(x)
        z = posterior.sample()
        return VAEOutput(posterior, z, self.decode(z))

    def prior_sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` latents from the latent kind's prior: N(0, temperature^2 I) for a Gaussian latent."""
        device = next(self.parameters()).device
        return self.bottleneck.prior_sample(n, self.latent_shape, temperature, generator).to(device)

    def draw_latents(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` new latents: from ``latent_sampler`` when one is attached (an ex-post sampler fitted
        on the training data's posterior, see ``vaekit.models.samplers``), else from the prior."""
        sampler = getattr(self, "latent_sampler", None)
        if sampler is None:
            return self.prior_sample(n, temperature, generator)
        return sampler.draw(n, temperature, generator).to(next(self.parameters()).device)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images in [0, 1] decoded from new latents (``draw_latents``)."""
        return self.likelihood.mean(self.decode(self.draw_latents(n, temperature, generator)))

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Posterior means of [0, 1] images."""
        return self.encode(self.likelihood.prepare(images)).mean

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Decodes of the posterior means of [0, 1] images, as [0, 1] images."""
        return self.likelihood.mean(self.decode(self.embed(images)))

    @torch.no_grad()
    def tokenize(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] images -> their integer token grids ``(B, *token_grid)`` (a quantized latent kind)."""
        require_latent(self, "tokens", "tokenize")
        return self.encode(self.likelihood.prepare(images)).indices

    @torch.no_grad()
    def detokenize(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token grids -> [0, 1] images: exactly ``reconstruct`` of the images they came from."""
        require_latent(self, "tokens", "detokenize")
        return self.to_image(self.bottleneck.detokenize(tokens))

    @torch.no_grad()
    def to_image(self, z: torch.Tensor) -> torch.Tensor:
        """Decode latents to [0, 1] images."""
        return self.likelihood.mean(self.decode(z))

    # ---------------------------------------------------------------- image-space API
    @torch.no_grad()
    def generate(self, n: int, temperature: float = 1.0, seed: int | None = None) -> torch.Tensor:
        """``n`` new images in [0, 1], ``(n, C, H, W)`` on the CPU, decoded in eval mode."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        with self.evaluating():
            return self.sample(n, temperature, generator).cpu()

    @torch.no_grad()
    def decode_images(self, z: torch.Tensor) -> torch.Tensor:
        """Latents to images in [0, 1] (``decode`` gives the decoder's raw parameters)."""
        device = next(self.parameters()).device
        with self.evaluating():
            return self.to_image(z.to(device)).cpu()

    @classmethod
    def from_modules(
        cls,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_shape: int | tuple[int, ...],
        likelihood: str | Likelihood = "gaussian",
        *,
        encoder_args: dict | None = None,
        decoder_args: dict | None = None,
        **likelihood_options,
    ) -> VAE:
        """A VAE from your own networks: ``encoder(x) -> (mean, logvar)``, ``decoder(z) -> params``.

        ``likelihood`` is a name (bernoulli, gaussian, laplace, ...; options such as ``scale=0.1``,
        ``learn_scale=True`` or ``output='identity'`` as keywords). The model trains with every objective
        and precision and saves like a built-in one; a new process rebuilds it with
        ``vaekit.load(run, trust_code=True)`` (the classes re-imported and built with
        ``encoder_args`` / ``decoder_args``) or ``vaekit.load(run, modules=(encoder, decoder))``.
        """
        from vaekit.config import LikelihoodConfig
        from vaekit.likelihoods import create_likelihood
        from vaekit.plugins import class_path

        if isinstance(latent_shape, int):
            latent_shape = (latent_shape,)
        if isinstance(likelihood, str):
            likelihood_config = LikelihoodConfig(name=likelihood, **likelihood_options)
            likelihood = create_likelihood(likelihood_config)
        else:
            likelihood_config = None
        model = ModulesVAE(encoder, decoder, tuple(latent_shape), likelihood)
        model.modules_config = ModulesConfig(
            encoder=class_path(type(encoder)),
            decoder=class_path(type(decoder)),
            encoder_args=dict(encoder_args or {}),
            decoder_args=dict(decoder_args or {}),
            latent_shape=list(model.latent_shape),
        )
        model.likelihood_config = likelihood_config
        return model

    def save_pretrained(self, folder: str | Path) -> Path:
        """A self-describing model folder: weights (safetensors), config, vaekit version and a model
        card (data, steps, final metrics) that ``vaekit.load`` and the Hugging Face Hub read."""
        from vaekit.io.card import save_pretrained

        return save_pretrained(self, Path(folder))


class ModulesVAE(VAE):
    """``encoder(x) -> (mean, logvar)`` shaped like ``latent_shape`` per sample; ``decoder(z)`` ->
    the likelihood's parameters (e.g. a location before the output activation), shaped like the data."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_shape: tuple[int, ...],
        likelihood: Likelihood,
        data_shape: tuple[int, ...] = (),
    ) -> None:
        super().__init__(likelihood, data_shape)  # type: ignore[arg-type]  # set from the data when empty
        if not isinstance(encoder, nn.Module) or not isinstance(decoder, nn.Module):
            raise TypeError("VAE.from_modules takes an encoder and a decoder that are torch.nn.Module objects")
        self.encoder, self.decoder = encoder, decoder
        self.latent_shape = tuple(int(d) for d in latent_shape)
        if not self.latent_shape or min(self.latent_shape) < 1:
            raise ValueError(f"latent_shape must be positive sizes, e.g. (16,), got {latent_shape!r}")

    def encode(self, x: torch.Tensor):
        out = self.encoder(x)
        if not isinstance(self.bottleneck, GaussianLatent):  # one latent tensor
            out = out if isinstance(out, tuple | list) else (out,)
            if len(out) != 1 or tuple(out[0].shape[1:]) != self.latent_shape:
                raise ValueError(f"the encoder must return one latent shaped (batch, {self.latent_shape})")
            return self.bottleneck.posterior(*out)
        if not (isinstance(out, tuple | list) and len(out) == 2):
            raise TypeError(f"the encoder must return (mean, logvar); it returned {type(out).__name__}")
        mean, logvar = out
        if tuple(mean.shape[1:]) != self.latent_shape or mean.shape != logvar.shape:
            raise ValueError(
                f"the encoder returned mean {tuple(mean.shape)} and logvar {tuple(logvar.shape)};"
                f" expected (batch, {', '.join(map(str, self.latent_shape))}) for both"
            )
        return DiagonalGaussian(mean, logvar)
