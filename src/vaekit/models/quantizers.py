"""Quantized latents (tokenizers), from vector-quantize-pytorch (the ``quantizers`` extra).

Each quantizer is a latent kind (``model.latent: vq | residual-vq | fsq | lfq``) with its options in
``model.<name>``. The latent is cut into tokens: a spatial latent ``(C, H, W)`` is an ``H x W`` grid
of tokens of width ``C``; a flat latent of ``D`` dimensions is ``D / token_dim`` tokens of width
``token_dim`` (a 1-D tokenizer). A token's code is an integer (``tokenize``); codes are turned back
into latents by lookup (``detokenize``), which is also how a posterior's ``mean`` is read, so that
decoding the tokens of an image gives exactly its reconstruction.

The ELBO of a quantized latent (van den Oord et al. 2017) has a uniform prior over codes and a
one-hot posterior: its KL is ``log K`` nats per token, a constant; the quantizer's own loss
(commitment, codebook, entropy) is added to the objective summed per sample, as the NLL is. ``CodebookHealth`` counts
codes used over a sliding window of training steps, the batch perplexity and dead-code restarts.
"""

from __future__ import annotations

import math
import types
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from vaekit.config import ConfigError
from vaekit.models.latents import LATENTS, Bottleneck
from vaekit.models.whitening import Whitening
from vaekit.optional import require
from vaekit.schema import MAX_COUNT, MAX_LATENT, MAX_WIDTH, bounded, non_negative, positive

MAX_CODES = 1 << 20  # codes of one codebook (the codebook and the usage counters are held in memory)


@dataclass(frozen=True)
class TokenOptions:
    """What every quantizer has: how a flat latent is cut into tokens, and the usage window."""

    token_dim: int = positive(4, MAX_LATENT)  # flat latents: each token's width (spatial: the channels)
    usage_window: int = positive(100, MAX_COUNT)  # training steps over which a code counts as used


@dataclass(frozen=True)
class VQConfig(TokenOptions):
    """A vector quantizer: nearest of ``codebook_size`` learned codes (VQ-VAE, VQGAN, LlamaGen)."""

    codebook_size: int = positive(1024, MAX_CODES)
    codebook_dim: int = non_negative(0, MAX_WIDTH)  # 0: the token width; smaller: low-dim codes, projected
    ema: bool = True  # codebook updated by exponential moving averages (else learned by its loss)
    decay: float = bounded(0.99, 0.0, 1.0)  # of the EMA updates
    kmeans_init: bool = False  # codes initialised by k-means on the first training batch
    kmeans_iters: int = positive(10, 1000)
    restart_threshold: float = bounded(0.0, 0.0, 0.99)  # restart codes used less than this share of the mean
    cosine: bool = False  # l2-normalised codes and inputs (ViT-VQGAN, LlamaGen)
    rotation_trick: bool = False  # gradients through the rotation trick instead of straight-through
    commitment_weight: float = non_negative(0.25)


@dataclass(frozen=True)
class ResidualVQConfig(VQConfig):
    """``quantizers`` vector quantizers, each coding what the previous ones left (RQ-VAE, SoundStream)."""

    quantizers: int = positive(4, 64)


@dataclass(frozen=True)
class FSQConfig(TokenOptions):
    """Finite scalar quantization (Mentzer et al. 2023): each of ``len(levels)`` channels rounded to
    its number of levels; the codebook is their product, no auxiliary loss."""

    levels: list[int] = bounded([8, 5, 5, 5], 2, 1 << 16)
    symmetric: bool = False  # levels symmetric about 0 (arXiv 2411.19842, sec. 3.2); allows 2 levels
    noise_dropout: float = bounded(0.0, 0.0, 1.0)  # share of channels given uniform noise in training (needs symmetric)
    whiten: bool = False  # decorrelate the channels before the grid (batch statistics in training, running after)


@dataclass(frozen=True)
class LFQConfig(TokenOptions):
    """Lookup-free quantization (MAGVIT-v2): the signs of log2(codebook_size) channels, with an entropy loss."""

    codebook_size: int = positive(1024, MAX_CODES)  # a power of two
    entropy_weight: float = non_negative(0.1)
    diversity_gamma: float = non_negative(1.0)  # weight of the batch entropy within the entropy loss
    commitment_weight: float = non_negative(0.25)


class TokenLayout:
    """Flat ``(D,)`` latents as ``D / t`` tokens of width ``t``; spatial ``(C, H, W)`` as ``H x W``."""

    def __init__(self, latent_shape: tuple[int, ...], token_dim: int, key: str) -> None:
        self.latent_shape = tuple(latent_shape)
        if len(latent_shape) == 1:
            if latent_shape[0] % token_dim:
                raise ConfigError(f"{key}.token_dim: {token_dim} does not divide the latent's {latent_shape[0]} dims")
            self.grid, self.width = (latent_shape[0] // token_dim,), token_dim
        elif len(latent_shape) == 3:
            self.grid, self.width = tuple(latent_shape[1:]), latent_shape[0]
        else:
            raise ConfigError(f"{key}: latents shaped {latent_shape} cannot be cut into tokens (flat or (C, H, W))")

    @property
    def tokens(self) -> int:
        return math.prod(self.grid)

    def to_tokens(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, *latent_shape)`` -> ``(B, tokens, width)``."""
        if len(self.latent_shape) == 1:
            return z.reshape(z.shape[0], self.tokens, self.width)  # shape[0]: a traced batch stays dynamic
        return z.flatten(2).transpose(1, 2)

    def from_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, tokens, width)`` -> ``(B, *latent_shape)``."""
        if len(self.latent_shape) == 1:
            return tokens.reshape(tokens.shape[0], *self.latent_shape)
        return tokens.transpose(1, 2).reshape(tokens.shape[0], *self.latent_shape)


class CodebookHealth(nn.Module):
    """Per training step: the share of codes chosen within the last ``window`` steps, the dead
    codes (the rest), the batch perplexity and the restarts so far. Buffers, so they resume exactly."""

    def __init__(self, codes: int, window: int) -> None:
        super().__init__()
        self.codes, self.window = codes, window
        self.register_buffer("last_seen", torch.full((codes,), -window - 1, dtype=torch.int64))
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))
        self.perplexity = torch.ones(())

    @torch.no_grad()
    def update(self, codes: torch.Tensor) -> None:
        self.steps += 1
        counts = torch.bincount(codes.flatten(), minlength=self.codes)
        self.last_seen.copy_(torch.where(counts > 0, self.steps, self.last_seen))
        self.perplexity = perplexity(counts)

    def used(self) -> torch.Tensor:
        return (self.last_seen > self.steps - self.window).sum()


def perplexity(counts: torch.Tensor) -> torch.Tensor:
    """exp(entropy) of the code histogram ``counts``: the number of equally used codes it is worth."""
    p = counts.double() / counts.sum().clamp_min(1)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-30))).sum()).float()


class Quantized:
    """A quantized posterior: ``indices`` ``(B, *grid[, depth])``, ``mean`` the codes' latent (lookup),
    ``sample()`` the quantizer's output (gradients pass to the encoder), KL ``log K`` per token."""

    def __init__(self, bottleneck: QuantizedLatent, z: torch.Tensor, indices: torch.Tensor, loss: torch.Tensor) -> None:
        self.bottleneck, self.z, self.indices, self.auxiliary_loss = bottleneck, z, indices, loss
        self._mean: torch.Tensor | None = None

    @property
    def mean(self) -> torch.Tensor:
        if self._mean is None:
            self._mean = self.bottleneck.detokenize(self.indices).to(self.z.dtype)
        return self._mean

    def sample(self, temperature: float = 1.0) -> torch.Tensor:
        return self.z

    def kl_per_dim(self) -> torch.Tensor:
        """``log K`` nats per token, spread evenly over its latent elements (no gradient)."""
        per_element = self.bottleneck.nats_per_token / self.bottleneck.layout.width
        return torch.full(self.z.shape, per_element, dtype=torch.float32, device=self.z.device)

    def kl(self) -> torch.Tensor:
        return self.kl_per_dim().flatten(1).sum(1)

    def logs(self) -> dict[str, torch.Tensor]:
        health = self.bottleneck.health
        used = health.used()
        return {
            "quantizer_loss": self.auxiliary_loss.detach().float(),
            "code_usage": used.float() / health.codes,
            "dead_codes": (health.codes - used).float(),
            "perplexity": health.perplexity,
            "restarts": self.bottleneck.restarts().float(),
        }


class QuantizedLatent(Bottleneck):
    """A quantizer of vector-quantize-pytorch behind one interface: ``_quantize(tokens) -> (quantized,
    indices, loss)`` and ``_lookup(indices) -> quantized`` over ``(B, tokens, width)``."""

    logs = ("quantizer_loss", "code_usage", "dead_codes", "perplexity", "restarts")

    def __init__(
        self, options: TokenOptions, latent_shape: tuple[int, ...], key: str, codebook_size: int, depth: int = 1
    ) -> None:
        super().__init__()
        _library(key)  # the extra is there, or one line naming it
        self.depth = depth  # codes per token (residual quantizers: one per stage)
        self.layout = TokenLayout(latent_shape, options.token_dim, key)
        self.codebook_size = codebook_size
        self.health = CodebookHealth(codebook_size * self.depth, options.usage_window)

    @property
    def loss_scale(self) -> float:
        """What turns the library's loss (a mean over latent elements) into a sum per sample, as the
        likelihood's NLL and the KL are (VQ-VAE's commitment is a sum: its weight then means the same
        at every latent size)."""
        return float(self.layout.tokens * self.layout.width)

    @property
    def nats_per_token(self) -> float:
        return self.depth * math.log(self.codebook_size)

    @property
    def token_grid(self) -> tuple[int, ...]:
        """The shape of one image's tokens: the grid, and the depth of a residual quantizer."""
        return (*self.layout.grid, self.depth) if self.depth > 1 else self.layout.grid

    def posterior(self, *outputs: torch.Tensor) -> Quantized:
        tokens = self.layout.to_tokens(outputs[0])
        quantized, indices, loss = self._quantize(tokens)
        loss = loss * self.loss_scale  # per sample, summed: on the scale of the likelihood's NLL
        indices = indices.long().reshape(tokens.shape[0], *self.token_grid)
        if self.training:
            offsets = torch.arange(self.depth, device=indices.device) * self.codebook_size
            self.health.update(indices if self.depth == 1 else indices + offsets)
        return Quantized(self, self.layout.from_tokens(quantized), indices, loss.reshape(()))

    def detokenize(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, *token_grid)`` -> latents ``(B, *latent_shape)``."""
        if tuple(indices.shape[1:]) != self.token_grid:
            raise ValueError(f"tokens shaped {tuple(indices.shape[1:])} per image; this model's are {self.token_grid}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size):
            raise ValueError(f"token values must lie in 0..{self.codebook_size - 1}")
        flat = indices.reshape(indices.shape[0], self.layout.tokens, *((self.depth,) if self.depth > 1 else ()))
        return self.layout.from_tokens(self._lookup(flat.to(self._device())))

    def prior_sample(self, n, latent_shape, temperature=1.0, generator=None):
        """The ELBO's prior: every token uniform over the codes (``temperature`` does not apply)."""
        codes = torch.randint(self.codebook_size, (n, *self.token_grid), generator=generator)
        with torch.no_grad():
            return self.detokenize(codes).cpu()

    def train(self, mode: bool = True) -> QuantizedLatent:
        super().train(mode)
        if not mode:  # the library's VQ returns its `zero` buffer as the loss, set to require grad in
            for buffer in self.buffers():  # training; an export traced after it refuses such a constant
                buffer.requires_grad_(False)
        return self

    def restarts(self) -> torch.Tensor:
        counters = [b for name, b in self.named_buffers() if name.endswith("vaekit_restarts")]
        return sum(counters, torch.zeros((), dtype=torch.int64)) if counters else torch.zeros(())

    def _device(self) -> torch.device:
        return self.health.last_seen.device

    def _quantize(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _lookup(self, indices: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def _library(key: str):
    """vector-quantize-pytorch, or a ``MissingExtra`` naming the quantizers extra."""
    return require("vector_quantize_pytorch", "quantizers", f"model.latent {key.split('.')[-1].replace('_', '-')}")


def _vq_arguments(options: VQConfig, width: int) -> dict:
    return {
        "dim": width,
        "codebook_size": options.codebook_size,
        "codebook_dim": options.codebook_dim or None,
        "decay": options.decay,
        "kmeans_init": options.kmeans_init,
        "kmeans_iters": options.kmeans_iters,
        "dead_code_threshold_ratio": options.restart_threshold,
        "use_cosine_sim": options.cosine,
        "rotation_trick": options.rotation_trick,
        "commitment_weight": options.commitment_weight,
        "ema_update": options.ema,
        "learnable_codebook": not options.ema,
    }


def _count_restarts(quantizer: nn.Module) -> None:
    """Each codebook of ``quantizer`` counts the codes its dead-code restarts replace."""
    for module in quantizer.modules():
        if hasattr(module, "replace") and hasattr(module, "embed") and hasattr(module, "cluster_size"):
            module.register_buffer("vaekit_restarts", torch.zeros((), dtype=torch.int64))
            module.replace = types.MethodType(_counted_replace, module)  # a bound method: deep copies rebind it


def _counted_replace(codebook: nn.Module, batch_samples, batch_mask, seq_mask=None) -> None:
    before = codebook.embed.detach().clone()
    type(codebook).replace(codebook, batch_samples, batch_mask, seq_mask)
    codebook.vaekit_restarts += (codebook.embed != before).flatten(2).any(-1).sum()


def _warn_if_projected_down(key: str, width: int, channels: int, reachable: str) -> None:
    """A token narrower than the quantizer's channels is projected up by a linear map: its image is a
    ``width``-dimensional plane of the ``channels``-dimensional grid, which meets only some codes."""
    if width < channels:
        warnings.warn(
            f"{key}: tokens of width {width} are projected to {channels} channels and reach {reachable}; "
            f"give the latent {channels} channels (or token_dim {channels}) to reach every code",
            stacklevel=3,
        )


@LATENTS.register(
    "vq",
    options=VQConfig,
    summary="vector quantization: EMA updates, k-means start, dead-code restarts, cosine codes, rotation trick",
    capabilities={"prior", "tokens"},
    tiny={"model.latent_dim": 4, "model.vq.codebook_size": 8, "model.vq.token_dim": 2},
    parameters=1,
)
class VectorQuantized(QuantizedLatent):
    def __init__(self, options: VQConfig, latent_shape: tuple[int, ...]) -> None:
        super().__init__(options, latent_shape, "model.vq", options.codebook_size)
        self.options = options
        self.quantizer = _library("model.vq").VectorQuantize(**_vq_arguments(options, self.layout.width))
        _count_restarts(self.quantizer)

    def _quantize(self, tokens):
        return self.quantizer(tokens)

    def _lookup(self, indices):
        return self.quantizer.get_output_from_indices(indices)


@LATENTS.register(
    "residual-vq",
    options=ResidualVQConfig,
    summary="residual vector quantization: a stack of VQs, each coding the previous ones' residual",
    capabilities={"prior", "tokens"},
    tiny={
        "model.latent_dim": 4,
        "model.residual_vq.codebook_size": 8,
        "model.residual_vq.token_dim": 2,
        "model.residual_vq.quantizers": 2,
    },
    parameters=1,
)
class ResidualVectorQuantized(QuantizedLatent):
    def __init__(self, options: ResidualVQConfig, latent_shape: tuple[int, ...]) -> None:
        super().__init__(options, latent_shape, "model.residual_vq", options.codebook_size, options.quantizers)
        arguments = _vq_arguments(options, self.layout.width)
        self.quantizer = _library("model.residual_vq").ResidualVQ(num_quantizers=options.quantizers, **arguments)
        _count_restarts(self.quantizer)

    def _quantize(self, tokens):
        quantized, indices, losses = self.quantizer(tokens)
        return quantized, indices, losses.sum()

    def _lookup(self, indices):
        return self.quantizer.get_output_from_indices(indices)


@LATENTS.register(
    "fsq",
    options=FSQConfig,
    summary="finite scalar quantization: channels rounded to fixed levels, no codebook loss",
    capabilities={"prior", "tokens"},
    tiny={"model.latent_dim": 4, "model.fsq.levels": [5, 3], "model.fsq.token_dim": 2},
    parameters=1,
)
class FiniteScalarQuantized(QuantizedLatent):
    def __init__(self, options: FSQConfig, latent_shape: tuple[int, ...]) -> None:
        if not options.levels:
            raise ConfigError("model.fsq.levels: give each channel's number of levels, e.g. [8, 5, 5, 5]")
        size = math.prod(options.levels)
        if size > MAX_CODES:
            raise ConfigError(f"model.fsq.levels: {size} codes; at most {MAX_CODES}")
        if options.noise_dropout and not options.symmetric:
            raise ConfigError("model.fsq.noise_dropout: needs model.fsq.symmetric: true (the noise is a level's width)")
        if 2 in options.levels and not options.symmetric:
            raise ConfigError("model.fsq.levels: 2 levels need model.fsq.symmetric: true (or 3 levels and more)")
        super().__init__(options, latent_shape, "model.fsq", size)
        width, channels = self.layout.width, len(options.levels)
        _warn_if_projected_down("model.fsq", width, channels, "only the cells that plane crosses")
        self.quantizer = _library("model.fsq").FSQ(
            list(options.levels),
            dim=self.layout.width,
            preserve_symmetry=options.symmetric,
            noise_dropout=options.noise_dropout,
        )
        self.whitening = Whitening(self.layout.width) if options.whiten else nn.Identity()

    def _quantize(self, tokens):
        quantized, indices = self.quantizer(self.whitening(tokens))
        return quantized, indices, torch.zeros((), device=tokens.device)

    def _lookup(self, indices):
        return self.quantizer.indices_to_codes(indices)


@LATENTS.register(
    "lfq",
    options=LFQConfig,
    summary="lookup-free quantization (MAGVIT-v2): signs of log2(K) channels, entropy loss",
    capabilities={"prior", "tokens"},
    tiny={"model.latent_dim": 4, "model.lfq.codebook_size": 4, "model.lfq.token_dim": 2},
    parameters=1,
)
class LookupFreeQuantized(QuantizedLatent):
    def __init__(self, options: LFQConfig, latent_shape: tuple[int, ...]) -> None:
        if options.codebook_size & (options.codebook_size - 1) or options.codebook_size < 2:
            raise ConfigError(f"model.lfq.codebook_size: {options.codebook_size} is not a power of two >= 2")
        super().__init__(options, latent_shape, "model.lfq", options.codebook_size)
        bits, width = options.codebook_size.bit_length() - 1, self.layout.width
        reachable = sum(math.comb(bits, i) for i in range(min(width, bits) + 1))  # regions of `bits` hyperplanes
        _warn_if_projected_down("model.lfq", width, bits, f"at most {reachable:,} of {options.codebook_size:,} codes")
        self.quantizer = _library("model.lfq").LFQ(
            dim=self.layout.width,
            codebook_size=options.codebook_size,
            entropy_loss_weight=options.entropy_weight,
            commitment_loss_weight=options.commitment_weight,
            diversity_gamma=options.diversity_gamma,
        )

    @property
    def loss_scale(self) -> float:
        """The entropy loss is a mean over tokens (its commitment part, over their elements): summed per sample."""
        return float(self.layout.tokens)

    def _quantize(self, tokens):
        out = self.quantizer(tokens)
        return out.quantized, out.indices, out.entropy_aux_loss

    def _lookup(self, indices):
        return self.quantizer.indices_to_codes(indices)
