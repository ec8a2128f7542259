"""Introspective training: Soft-IntroVAE (Daniel & Tamar 2021) and AS-IntroVAE (Lu et al. 2022).

Both follow the official code step for step. With s = 1 / (C H W), per-sample summed squared
errors (rec), per-sample KLs, and the decoder outputs taken as images (the likelihood's location):

encoder step (decoder frozen; reconstructions and samples detached)
    L_E = s (beta_rec rec + beta_kl KL)
          + 1/4 (mean exp(-2 s (beta_rec rec_r + beta_neg KL_r)) + mean exp(-2 s (... fakes)))
decoder step (encoder frozen)
    L_D = s (beta_rec rec + 1/2 beta_kl (KL_r + KL_f) + 1/2 gamma_r beta_rec (rec_rr + rec_ff))

AS-IntroVAE replaces each KL of a reconstruction / sample posterior in the exp-ELBO terms and in
L_D by c KL + (1 - c) AS, where AS is the adversarial-similarity distance between the batch of
reconstruction posteriors and the batch of fake posteriors (tanh-squashed means and log-variances)
and c = min(1, tanh(5 t / T)) (or min(1, 5 t / T)) over the T steps of the run; it keeps an EMA of
the decoder (0.999) for samples.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Literal

import torch

from vaekit import noise
from vaekit.config import Config, ConfigError
from vaekit.engine.ema import EMA
from vaekit.engine.optimizers import make_optimizer
from vaekit.engine.precision import Precision
from vaekit.engine.step import StepInfo
from vaekit.likelihoods import Likelihood
from vaekit.models.base import VAE, DiagonalGaussian
from vaekit.objectives.base import Objective
from vaekit.objectives.registry import OBJECTIVES
from vaekit.objectives.terms import TermInputs
from vaekit.schema import bounded, non_negative, positive


@dataclass(frozen=True)
class IntroConfig:
    """Soft-IntroVAE / AS-IntroVAE hyper-parameters (``objective.name: soft-intro | as-intro``)."""

    beta_kl: float = non_negative(1.0)
    beta_rec: float = non_negative(1.0)
    beta_neg: float = non_negative(256.0)  # change it on resume: --resume RUN --set objective.intro.beta_neg=...
    beta_neg_schedule: list[float] = non_negative([])  # per epoch (last value continues); wins
    gamma_r: float = non_negative(1.0e-8)
    warmup_epochs: int = non_negative(0)  # plain-VAE epochs before the introspective game
    ema_decay: float = bounded(0.0, 0.0, 0.999999)  # EMA of the decoder for samples and the saved model
    transition: Literal["tanh", "linear"] = "tanh"  # as-intro: c = min(1, tanh(5 t / T)) or min(1, 5 t / T)
    kl_fake_patience: int = positive(3)  # epochs of KL(fake) < KL(real) before warning to raise beta_neg


def squared_error(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample summed squared error."""
    return (x.float() - y.float()).square().flatten(1).sum(1)


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Per-sample KL(N(mean, exp(logvar)) || N(0, I)), without clamping (as the official code), in
    float32 whatever the autocast precision."""
    mean, logvar = mean.float(), logvar.float()
    return -0.5 * (1 + logvar - logvar.exp() - mean.square()).flatten(1).sum(1)


def _pairwise_kernel(mu1, var1, mu2, var2, reduce: str) -> torch.Tensor:
    total_var = var1 + var2
    values = torch.exp(-0.5 * (mu1 - mu2).square() / total_var) / torch.sqrt(total_var)
    return values.mean() if reduce == "mean" else values.sum()


def as_distance(mu_a, logvar_a, mu_b, logvar_b, reduce: str = "sum") -> torch.Tensor:
    """AS-IntroVAE's distance between two batches of diagonal Gaussians: the closed-form Gaussian
    kernel summed (or averaged) over all pairs and dimensions, v_aa + v_bb - 2 v_ab."""
    var_a, var_b = logvar_a.exp(), logvar_b.exp()
    flat = [t.flatten(1) for t in (mu_a, var_a, mu_b, var_b)]
    rows = [t[:, None, :] for t in flat]
    cols = [t[None, :, :] for t in flat]
    v_aa = _pairwise_kernel(rows[0], rows[1], cols[0], cols[1], reduce)
    v_bb = _pairwise_kernel(rows[2], rows[3], cols[2], cols[3], reduce)
    v_ab = _pairwise_kernel(rows[0], rows[1], cols[2], cols[3], reduce)
    return v_aa + v_bb - 2 * v_ab


def transition(step: int, total: int, mode: str = "tanh") -> float:
    """c = min(1, tanh(5 t / T)) or min(1, 5 t / T)."""
    x = 5 * step / max(total, 1)
    if mode == "tanh":
        x = math.tanh(x)
    elif mode != "linear":
        raise ConfigError(f"objective.intro.transition: must be tanh or linear, got {mode!r}")
    return min(1.0, x)


def beta_neg_at(intro, epoch: int) -> float:
    """beta_neg for ``epoch``: the schedule's entry (the last one continues) or the constant."""
    if intro.beta_neg_schedule:
        return intro.beta_neg_schedule[min(epoch, len(intro.beta_neg_schedule) - 1)]
    return intro.beta_neg


@OBJECTIVES.register(
    "soft-intro",
    options=IntroConfig,
    section="intro",
    summary="Soft-IntroVAE: the encoder and decoder play an introspective game (beta_kl, beta_rec, beta_neg)",
    tiny={"objective.intro.beta_neg": 8.0},
)
class SoftIntro(Objective):
    """Soft-IntroVAE with separate Adam optimisers for the encoder and the decoder."""

    metric_names = (
        "loss", "loss_encoder", "loss_decoder", "rec", "kl_real", "kl_rec", "kl_fake",
        "expelbo_rec", "expelbo_fake", "beta_neg",
    )  # fmt: skip
    adversarial_similarity = False
    capabilities = frozenset({"continuous-likelihood"})

    def __init__(self, model: VAE, config: Config, precision: Precision) -> None:
        super().__init__(model, config, precision)
        if not hasattr(model.likelihood, "location"):
            raise ConfigError(
                f"likelihood.name: {config.objective.name} needs a continuous likelihood (gaussian or laplace)"
            )
        self.intro = config.objective.intro
        if config.train.trainable != "all":
            raise ConfigError(f"train.trainable: {config.objective.name} trains encoder and decoder against each other")
        self.optimizers["encoder"] = make_optimizer(model.encoder.parameters(), config)
        decoder_parameters = [*model.decoder.parameters(), *model.likelihood.parameters()]
        self.optimizers["decoder"] = make_optimizer(decoder_parameters, config)
        self.ema = EMA(model.decoder, self.intro.ema_decay) if self.intro.ema_decay > 0 else None
        self.scale = 1.0 / math.prod(model.image_shape)
        self._epoch_kl = {"kl_real": 0.0, "kl_fake": 0.0, "steps": 0}
        self._low_fake_epochs = 0
        self.metric_names = (*type(self).metric_names, *(["c"] if self.adversarial_similarity else []))

    # ------------------------------------------------------------------ helpers
    @property
    def likelihood(self) -> Likelihood:
        return self.model.likelihood

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output as an image in the target space (the official decoders are linear)."""
        return self.likelihood.location(self.model.decode(z))

    def _encode(self, x: torch.Tensor) -> DiagonalGaussian:
        return self.model.encode(x)

    def _set_trainable(self, encoder: bool | None) -> None:
        """Only the encoder (True), only the decoder side (False), or everything (None)."""
        self.model.encoder.requires_grad_(encoder is not False)
        self.model.decoder.requires_grad_(encoder is not True)
        self.model.likelihood.requires_grad_(encoder is not True)

    def _negative_kl(self, posterior: DiagonalGaussian, other: DiagonalGaussian, c: float, reduce: str):
        """What stands for the KL of a reconstruction / fake posterior: plain KL for Soft-IntroVAE."""
        return kl_divergence(posterior.mean, posterior.logvar)

    # ------------------------------------------------------------------ one step
    def step(self, batch: torch.Tensor, info: StepInfo) -> dict[str, torch.Tensor]:
        real = self.likelihood.prepare(batch)
        epoch = int(info.epoch)
        if epoch < self.intro.warmup_epochs:
            return self._vae_step(real, info)
        beta_kl, beta_rec, gamma_r = self.intro.beta_kl, self.intro.beta_rec, self.intro.gamma_r
        beta_neg = beta_neg_at(self.intro, epoch)
        c = transition(info.step, info.total_steps, self.intro.transition) if self.adversarial_similarity else 1.0
        s = self.scale
        prior_noise = noise.randn(len(real), *self.model.latent_shape, device=real.device)

        # ---- encoder step: decoder frozen
        self._set_trainable(encoder=True)
        with self.precision.autocast():
            fake = self._decode(prior_noise)
            posterior = self._encode(real)
            z = posterior.sample()
            rec = self._decode(z)
            loss_rec = squared_error(real, rec).mean()
            kl_real = kl_divergence(posterior.mean.float(), posterior.logvar.float()).mean()
            rec_posterior = self._encode(rec.detach())
            fake_posterior = self._encode(fake.detach())
            rec_rec = self._decode(rec_posterior.sample())
            rec_fake = self._decode(fake_posterior.sample())
            kl_rec = self._negative_kl(rec_posterior, fake_posterior, c, "sum")
            kl_fake = self._negative_kl(fake_posterior, rec_posterior, c, "sum")
            expelbo_rec = torch.exp(-2 * s * (beta_rec * squared_error(rec, rec_rec) + beta_neg * kl_rec)).mean()
            expelbo_fake = torch.exp(-2 * s * (beta_rec * squared_error(fake, rec_fake) + beta_neg * kl_fake)).mean()
            loss_encoder = s * (beta_rec * loss_rec + beta_kl * kl_real) + 0.25 * (expelbo_rec + expelbo_fake)
        self.precision.minimize(
            loss_encoder, self.optimizers["encoder"], self.model.encoder.parameters(), info.micro_batch
        )

        # ---- decoder step: encoder frozen
        self._set_trainable(encoder=False)
        with self.precision.autocast():
            fake = self._decode(prior_noise)
            rec = self._decode(z.detach())
            loss_rec = squared_error(real, rec).mean()
            rec_posterior = self._encode(rec)
            fake_posterior = self._encode(fake)
            rec_rec = self._decode(rec_posterior.sample().detach())
            rec_fake = self._decode(fake_posterior.sample().detach())
            loss_rec_rec = squared_error(rec.detach(), rec_rec).mean()
            loss_fake_rec = squared_error(fake.detach(), rec_fake).mean()
            kl_terms = self._decoder_kl(rec_posterior, fake_posterior, c)
            loss_decoder = s * (
                beta_rec * loss_rec
                + 0.5 * beta_kl * kl_terms
                + 0.5 * gamma_r * beta_rec * (loss_rec_rec + loss_fake_rec)
            )
            inputs = TermInputs(batch, real, s * beta_rec * loss_rec, lambda: self.likelihood.to_unit(rec))
            loss_decoder, extra = self.terms.add(loss_decoder, inputs, info)
        decoder_parameters = [*self.model.decoder.parameters(), *self.model.likelihood.parameters()]
        optimizers, parameters = self.terms.joint([self.optimizers["decoder"]], decoder_parameters)
        self.precision.minimize(loss_decoder, optimizers, parameters, info.micro_batch)
        self._set_trainable(encoder=None)
        extra |= self.terms.after_update(inputs, info)
        if self.ema is not None:
            self.ema.update()

        kl_fake_plain = kl_divergence(fake_posterior.mean.float(), fake_posterior.logvar.float()).mean().detach()
        self._track(kl_real.detach(), kl_fake_plain)
        scalars = {
            "loss": (loss_encoder + loss_decoder).detach(),
            "loss_encoder": loss_encoder.detach(),
            "loss_decoder": loss_decoder.detach(),
            "rec": loss_rec.detach(),
            "kl_real": kl_real.detach(),
            "kl_rec": kl_divergence(rec_posterior.mean.float(), rec_posterior.logvar.float()).mean().detach(),
            "kl_fake": kl_fake_plain,
            "expelbo_rec": expelbo_rec.detach(),
            "expelbo_fake": expelbo_fake.detach(),
            "beta_neg": torch.tensor(beta_neg),
            **extra,
        }
        if self.adversarial_similarity:
            scalars["c"] = torch.tensor(c)
        return scalars

    def _decoder_kl(self, rec_posterior: DiagonalGaussian, fake_posterior: DiagonalGaussian, c: float):
        """KL_r + KL_f of the decoder loss (batch means)."""
        return (
            kl_divergence(rec_posterior.mean, rec_posterior.logvar).mean()
            + kl_divergence(fake_posterior.mean, fake_posterior.logvar).mean()
        )

    def _vae_step(self, real: torch.Tensor, info: StepInfo) -> dict[str, torch.Tensor]:
        """Plain VAE warm-up (the official ``num_vae`` epochs): both optimisers, no scaling."""
        self._set_trainable(encoder=None)
        with self.precision.autocast():
            posterior = self._encode(real)
            rec = self._decode(posterior.sample())
            loss_rec = squared_error(real, rec).mean()
            kl_real = kl_divergence(posterior.mean.float(), posterior.logvar.float()).mean()
            loss = self.intro.beta_rec * loss_rec + self.intro.beta_kl * kl_real
        optimizers = [self.optimizers["encoder"], self.optimizers["decoder"]]
        self.precision.minimize(loss, optimizers, self.model.parameters(), info.micro_batch)
        if self.ema is not None:
            self.ema.update()
        zero = torch.zeros(())
        scalars = {name: zero for name in self.metric_names}
        scalars.update({"loss": loss.detach(), "rec": loss_rec.detach(), "kl_real": kl_real.detach()})
        return scalars

    # ------------------------------------------------------------------ diagnostics, EMA, state
    def _track(self, kl_real: torch.Tensor, kl_fake: torch.Tensor) -> None:
        self._epoch_kl["kl_real"] += kl_real
        self._epoch_kl["kl_fake"] += kl_fake
        self._epoch_kl["steps"] += 1

    def end_of_epoch(self, epoch: int) -> str | None:
        sums, self._epoch_kl = self._epoch_kl, {"kl_real": 0.0, "kl_fake": 0.0, "steps": 0}
        if not sums["steps"]:
            return None
        kl_real, kl_fake = float(sums["kl_real"]) / sums["steps"], float(sums["kl_fake"]) / sums["steps"]
        self._low_fake_epochs = self._low_fake_epochs + 1 if kl_fake < kl_real else 0
        times, rest = divmod(self._low_fake_epochs, self.intro.kl_fake_patience)
        if times and not rest and times & (times - 1) == 0:  # after patience, 2x, 4x ... epochs: not every epoch
            return (
                f"KL(fake) {kl_fake:.1f} has stayed below KL(real) {kl_real:.1f} for {self._low_fake_epochs} epochs: "
                "samples are likely poor; raise beta_neg (--resume RUN --set objective.intro.beta_neg=...)"
            )
        return None

    def export_context(self) -> contextlib.AbstractContextManager:
        return self.ema.applied() if self.ema is not None else contextlib.nullcontext()

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["intro"] = {"low_fake_epochs": self._low_fake_epochs}
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._low_fake_epochs = int(state.get("intro", {}).get("low_fake_epochs", 0))
        if self.ema is not None and "ema" in state:
            self.ema.load_state_dict(state["ema"])


@OBJECTIVES.register(
    "as-intro",
    options=IntroConfig,
    section="intro",
    summary="AS-IntroVAE: Soft-IntroVAE with the adversarial-similarity distance and its transition",
    tiny={"objective.intro.beta_neg": 8.0, "objective.intro.ema_decay": 0.9},
)
class ASIntro(SoftIntro):
    """AS-IntroVAE: KL of reconstruction / fake posteriors blended with the AS distance."""

    adversarial_similarity = True

    def _negative_kl(self, posterior: DiagonalGaussian, other: DiagonalGaussian, c: float, reduce: str):
        kl = kl_divergence(posterior.mean, posterior.logvar)
        squashed = [torch.tanh(t.float()) for t in (posterior.mean, posterior.logvar, other.mean, other.logvar)]
        return c * kl + (1 - c) * as_distance(*squashed, reduce=reduce)

    def _decoder_kl(self, rec_posterior: DiagonalGaussian, fake_posterior: DiagonalGaussian, c: float):
        # as the official code: squash first, then both KLs and the distance use the squashed values
        rec_mu, rec_logvar = torch.tanh(rec_posterior.mean.float()), torch.tanh(rec_posterior.logvar.float())
        fake_mu, fake_logvar = torch.tanh(fake_posterior.mean.float()), torch.tanh(fake_posterior.logvar.float())
        kl = kl_divergence(rec_mu, rec_logvar).mean() + kl_divergence(fake_mu, fake_logvar).mean()
        return c * kl + (1 - c) * as_distance(rec_mu, rec_logvar, fake_mu, fake_logvar, reduce="mean")
