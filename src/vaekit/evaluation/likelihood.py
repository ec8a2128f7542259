"""Importance-weighted likelihood (Burda et al. 2016) and how much of the latent space is used."""

from __future__ import annotations

import math

import numpy as np
import torch

from vaekit.data.loader import BatchLoader, within
from vaekit.data.progress import JobProgress
from vaekit.evaluation.elbo import bits_per_dim
from vaekit.limits import images_per_chunk
from vaekit.models.base import VAE

LOG_2PI = math.log(2 * math.pi)


@torch.no_grad()
def iwae_nll(
    model: VAE, images: np.ndarray, k: int = 1000, batch_size: int = 64, max_decode: int | None = None, seed: int = 0
) -> dict:
    """-log p(x) estimated with ``k`` importance samples from q(z|x), in nats per image and bits/dim.

    log p(x) >= log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x); the bound tightens as k grows and k = 1
    is the ELBO. Randomness (binarisation, samples) comes from ``seed`` in a forked random state.
    ``iwae_nll`` is under the trained likelihood (a density on [0, 1] for a continuous one: no bits
    per dim are given for it); ``discrete_iwae_*`` is the probability of the 8-bit images themselves.
    At most ``max_decode`` images are decoded at once (default: ``limits.images_per_chunk``, 85 at
    128 px; 2.7 GB peak for `vaekit evaluate` there, BENCHMARKS.md).
    """
    device = next(model.parameters()).device
    likelihood = model.likelihood
    total, discrete_total, discrete = 0.0, 0.0, likelihood.measures_pixels
    if max_decode is None:  # images decoded at once, sized by pixels: the same memory at 28 px and at 256
        max_decode = images_per_chunk(images.shape[1:], at_most=1 << 30)
    with (
        model.evaluating(),
        torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
        JobProgress(f"IWAE bound (k={k})", len(images), says_done=False) as progress,
    ):
        torch.manual_seed(seed)
        loader = BatchLoader(images, batch_size, shuffle=False, drop_last=False, device=device)
        for batch in loader:
            progress.advance(len(batch))
            target = likelihood.prepare(batch, stochastic=True)
            posterior = model.encode(target)
            mean, std = posterior.mean.float(), posterior.std.float()
            per_chunk = max(1, max_decode // len(batch))
            log_weights, discrete_weights = [], []
            for start in range(0, k, per_chunk):
                s = min(per_chunk, k - start)
                eps = torch.randn((s, *mean.shape), device=device)
                z = mean + std * eps
                params = model.decode(z.flatten(0, 1))
                repeated = target.unsqueeze(0).expand(s, *target.shape).flatten(0, 1)
                log_px = -likelihood.nll(params, repeated).view(s, -1)
                log_pz = (-0.5 * (z.square() + LOG_2PI)).flatten(2).sum(2)
                log_qz = (-0.5 * (eps.square() + LOG_2PI) - std.log()).flatten(2).sum(2)
                log_weights.append(log_px + log_pz - log_qz)
                if discrete:
                    log_px_8bit = -likelihood.discretised_nll(params, repeated).view(s, -1)
                    discrete_weights.append(log_px_8bit + log_pz - log_qz)
            total -= (torch.logsumexp(torch.cat(log_weights), 0) - math.log(k)).sum().item()
            if discrete:
                discrete_total -= (torch.logsumexp(torch.cat(discrete_weights), 0) - math.log(k)).sum().item()
    nll = total / len(images)
    result = {"iwae_nll": nll, "k": k}
    if likelihood.discrete:  # a probability of binarised pixels: in bits per dim as published
        result["iwae_bits_per_dim"] = bits_per_dim(nll, images.shape[1:])
    if discrete:
        discrete_nll = discrete_total / len(images)
        result |= {
            "discrete_iwae_nll": discrete_nll,
            "discrete_iwae_bits_per_dim": bits_per_dim(discrete_nll, images.shape[1:]),
        }
    return result


@torch.no_grad()
def latent_scaling(
    model: VAE, images: np.ndarray, batch_size: int = 128, seed: int = 0, seconds: float | None = None
) -> dict:
    """``scaling_factor`` (1 / std) and ``shift_factor`` (mean) of posterior samples over ``images``:
    what a latent diffusion model multiplies its latents by (diffusers' ``config.scaling_factor``);
    for spatial latents ``(C, H, W)`` also ``latents_mean`` / ``latents_std`` per channel (the
    per-channel normalisation SDXL, SD3 and FLUX configs carry). With ``seconds``, batches stop once
    that long has passed (the first always runs); ``images`` says how many were measured."""
    device = next(model.parameters()).device
    channels = model.latent_shape[0] if len(model.latent_shape) == 3 else 1
    total = torch.zeros(channels, dtype=torch.float64)
    total_sq = torch.zeros(channels, dtype=torch.float64)
    count = measured = 0
    generator = torch.Generator().manual_seed(seed)
    with model.evaluating():
        for batch in within(BatchLoader(images, batch_size, shuffle=False, drop_last=False, device=device), seconds):
            measured += len(batch)
            posterior = model.encode(model.likelihood.prepare(batch))
            eps = torch.randn(posterior.mean.shape, generator=generator).to(device)
            std = getattr(posterior, "std", None)  # a deterministic or quantized latent is its mean
            z = (posterior.mean if std is None else posterior.mean + std * eps).double().cpu()
            per_channel = z.transpose(0, 1).reshape(channels, -1) if channels > 1 else z.reshape(1, -1)
            total += per_channel.sum(1)
            total_sq += per_channel.square().sum(1)
            count += per_channel.shape[1]
    mean = float(total.sum() / (count * channels))
    std = max(float(total_sq.sum() / (count * channels)) - mean**2, 1e-12) ** 0.5
    result = {"scaling_factor": 1.0 / std, "shift_factor": mean, "latent_std": std, "images": measured}
    if len(model.latent_shape) == 3:
        channel_mean = total / count
        channel_std = (total_sq / count - channel_mean.square()).clamp_min(1e-12).sqrt()
        result |= {"latents_mean": channel_mean.tolist(), "latents_std": channel_std.tolist()}
    return result


def high_frequency_share(maps: torch.Tensor, cutoff: float = 0.5) -> float:
    """The share of the power of ``maps`` ``(N, C, H, W)`` (each map's mean removed) at radial
    frequencies above ``cutoff`` x Nyquist, from the radially averaged power spectrum: how much
    fine detail a latent carries (the "diffusability" of Skorokhodov et al. 2025: lower diffuses
    more easily)."""
    maps = maps.double()
    maps = maps - maps.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(maps).abs().square().mean(dim=(0, 1))
    fy = torch.fft.fftfreq(maps.shape[-2], dtype=torch.float64).abs()
    fx = torch.fft.fftfreq(maps.shape[-1], dtype=torch.float64).abs()
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) / 0.5  # 1 = Nyquist along an axis
    total = float(power.sum())
    return float(power[radius > cutoff].sum()) / total if total > 0 else 0.0


@torch.no_grad()
def latent_spectrum(model: VAE, images: np.ndarray, batch_size: int = 128) -> dict:
    """High-frequency share of the spatial latents' (posterior means) and of the images' power
    spectra, and their ratio (above 1: the latent is busier than the images it encodes)."""
    if len(model.latent_shape) != 3:
        return {}
    device = next(model.parameters()).device
    latent_shares, image_shares, weights = [], [], []
    with model.evaluating():
        for batch in BatchLoader(images, batch_size, shuffle=False, drop_last=False, device=device):
            latent_shares.append(high_frequency_share(model.embed(batch).cpu()))
            image_shares.append(high_frequency_share(batch.cpu()))
            weights.append(len(batch))
    latent = float(np.average(latent_shares, weights=weights))
    image = float(np.average(image_shares, weights=weights))
    return {
        "latent_high_frequency_share": latent,
        "image_high_frequency_share": image,
        "spectrum_ratio": latent / image if image > 0 else float("nan"),
    }


class RunningVariance:
    """Per-column mean and (unbiased) variance of rows added batch by batch (Chan et al.'s
    combination of batch moments): memory holds one row of each, not every row."""

    def __init__(self) -> None:
        self.count, self.mean, self.m2 = 0, None, None

    def add(self, rows: torch.Tensor) -> None:
        n, batch_mean = len(rows), rows.mean(0)
        batch_m2 = (rows - batch_mean).square().sum(0)
        if self.mean is None:
            self.count, self.mean, self.m2 = n, batch_mean, batch_m2
            return
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + batch_m2 + delta.square() * (self.count * n / total)
        self.count = total

    def variance(self) -> torch.Tensor:
        return self.m2 / max(self.count - 1, 1)


@torch.no_grad()
def latent_usage(model: VAE, images: np.ndarray, threshold: float = 0.01, batch_size: int = 256) -> dict:
    """KL per latent dimension (mean over images) and active units: dimensions whose posterior
    mean varies across the data by more than ``threshold`` (Burda et al. 2016)."""
    device = next(model.parameters()).device
    spread, kl_sum = RunningVariance(), 0.0
    with model.evaluating():
        for batch in BatchLoader(images, batch_size, shuffle=False, drop_last=False, device=device):
            posterior = model.encode(model.likelihood.prepare(batch))
            spread.add(posterior.mean.flatten(1).double().cpu())
            kl_sum = kl_sum + posterior.kl_per_dim().flatten(1).double().sum(0).cpu()
    activity = spread.variance()
    kl_per_dim = kl_sum / spread.count
    return {
        "active_units": int((activity > threshold).sum()),
        "latent_dims": int(activity.numel()),
        "activity_threshold": threshold,
        "kl_per_dim": [round(v, 5) for v in kl_per_dim.tolist()],
        "kl_total": float(kl_per_dim.sum()),
    }
