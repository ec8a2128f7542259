"""One evaluation path that records every setting next to every number, as JSON and Markdown."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaekit.data.dataset import ImageDataset
from vaekit.data.loader import BatchLoader
from vaekit.evaluation.elbo import evaluate_elbo, likelihood_units
from vaekit.evaluation.generation import (
    extract_features,
    frechet_distance,
    kernel_inception_distance,
    precision_recall_density_coverage,
)
from vaekit.evaluation.likelihood import iwae_nll, latent_scaling, latent_spectrum, latent_usage
from vaekit.evaluation.reconstruction import reconstruction_metrics
from vaekit.evaluation.speed import throughput
from vaekit.explore.sampling import iter_samples
from vaekit.io.card import reported
from vaekit.io.files import write_atomically
from vaekit.limits import require_within_budget
from vaekit.models.base import VAE
from vaekit.models.latents import latent_has, require_latent
from vaekit.registry import Registry
from vaekit.schema import ConfigError, dotted_items

# Each metric is a function (model, images, settings, wanted) -> (groups of numbers, details to
# record); metrics computed in one pass (reconstruction + lpips; fid, kid, rfid) share a function,
# called once. default: computed when no metric is named.
# needs: the latent-kind capabilities the metric needs (models/latents.py); a default metric a model's
# latent kind cannot give is left out, one named explicitly is refused in one line
METRICS: Registry = Registry("metric", "metrics", capabilities=("default",), declares=("needs",))
MAX_FEATURE_DIM = 2048  # the widest feature network FID / KID use (Inception's pool3)
MAX_IWAE_K = 100_000  # importance samples per image (published bounds use 5,000)


@dataclass
class EvaluationSettings:
    """Everything a number depends on; all of it is written into the report."""

    split: str = "test"
    metrics: list[str] = field(default_factory=lambda: default_metrics())
    max_images: int | None = None  # cap on held-out images (first N of the split)
    batch_size: int = 128
    seed: int = 0
    iwae_k: int = 100
    n_samples: int = 10000  # generated images for FID / KID
    features: str = "inception"  # "inception" (pytorch-fid weights) or a classifier .safetensors file
    inception_weights: str | None = None
    lpips_backbone: str = "vgg"
    lpips_backbone_weights: str | None = None
    lpips_linear_weights: str | None = None
    kid_subsets: int = 100
    kid_subset_size: int = 1000

    def __post_init__(self) -> None:
        for name in self.metrics:
            METRICS.get(name)  # a ConfigError with "did you mean" for a name no metric has
        if not 1 <= self.iwae_k <= MAX_IWAE_K:  # time grows with k x images x pixels: bounded, as sizes are
            raise ConfigError(f"evaluate --k: importance samples must be 1..{MAX_IWAE_K:,}, got {self.iwae_k:,}")


def default_metrics(model: VAE | None = None) -> list[str]:
    """The default metrics (those ``model``'s latent kind can give, when a model is named)."""
    return [entry.name for entry in METRICS if entry.has("default") and (model is None or _applies(entry, model))]


def _applies(entry, model: VAE) -> bool:
    return all(latent_has(model, need) for need in entry.declares.get("needs", ()))


def require_metrics(model: VAE, names: list[str]) -> None:
    """One ``ConfigError`` before any work for a metric that ``model``'s latent kind cannot give."""
    for name in names:
        for need in METRICS.get(name).declares.get("needs", ()):
            require_latent(model, need, f"metric {name}")


def evaluate(model: VAE, held_out: ImageDataset, settings: EvaluationSettings, run: str = "") -> dict[str, Any]:
    """Compute ``settings.metrics`` for ``model`` on ``held_out``; returns the full report."""
    require_metrics(model, settings.metrics)
    images = held_out.images[: settings.max_images] if settings.max_images else held_out.images
    details: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    wanted = set(settings.metrics)
    if wanted & {"fid", "kid", "prdc"}:  # the samples' features are held (at most 2048 float64 each): refused early
        require_within_budget("evaluate -n", settings.n_samples, (MAX_FEATURE_DIM,), bytes_per_value=8)
    for measure in dict.fromkeys(entry.factory for entry in METRICS if entry.name in wanted):  # each once
        groups, measured_details = measure(model, images, settings, wanted)
        metrics.update(groups)
        details.update(measured_details)
    return {
        "run": run,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {
            "class": type(model).__name__,
            "parameters": sum(p.numel() for p in model.parameters()),
            "image_shape": list(model.image_shape),
            "latent_shape": list(model.latent_shape),
            "likelihood": type(model.likelihood).__name__,
            "likelihood_units": likelihood_units(model),
        },
        "data": {"source": held_out.source, "split": settings.split, "images": len(images)},
        "settings": {**asdict(settings), **details},
        "metrics": metrics,
        "environment": {
            "torch": torch.__version__,
            "device": str(next(model.parameters()).device),
            "threads": torch.get_num_threads(),
            "machine": platform.machine(),
            "python": platform.python_version(),
        },
    }


Measured = tuple[dict[str, Any], dict[str, Any]]


@METRICS.register(
    "elbo",
    summary="negative ELBO, its reconstruction NLL and KL in nats; 8-bit (discrete) bound and bits per dim",
    capabilities={"default"},
    needs=("prior",),
)
def _elbo(model: VAE, images: np.ndarray, settings: EvaluationSettings, wanted: set[str]) -> Measured:
    elbo = evaluate_elbo(model, images, settings.batch_size, settings.seed)
    elbo.pop("images")  # the report says how many images it measured once, for every metric
    return {"elbo": reported(elbo)}, {}


@METRICS.register("reconstruction", summary="MSE, PSNR, SSIM and MS-SSIM of reconstructions", capabilities={"default"})
def _reconstruction(model: VAE, images: np.ndarray, settings: EvaluationSettings, wanted: set[str]) -> Measured:
    lpips = _lpips(settings) if "lpips" in wanted else None
    details = {"lpips": f"LPIPS v0.1, {settings.lpips_backbone} backbone, inputs in [-1, 1]"} if lpips else {}
    return {"reconstruction": reconstruction_metrics(model, images, settings.batch_size, lpips)}, details


METRICS.add("lpips", _reconstruction, summary="LPIPS of reconstructions (pretrained VGG or AlexNet weights)")


@METRICS.register(
    "nll",
    summary="IWAE bound on the test NLL (k importance samples): iwae_nll, discrete_iwae_nll and its bits per dim",
    capabilities={"default"},
    needs=("gaussian",),
)
def _nll(model: VAE, images: np.ndarray, settings: EvaluationSettings, wanted: set[str]) -> Measured:
    return {"nll": iwae_nll(model, images, k=settings.iwae_k, seed=settings.seed)}, {}


@METRICS.register(
    "latents",
    summary="active units, scaling and shift (per channel too), the latent spectrum's high-frequency share",
    capabilities={"default"},
)
def _latents(model: VAE, images: np.ndarray, settings: EvaluationSettings, wanted: set[str]) -> Measured:
    scaling = latent_scaling(model, images, seed=settings.seed)
    return {"latents": {**latent_usage(model, images), **scaling, **latent_spectrum(model, images)}}, {}


@METRICS.register(
    "codebook",
    summary="a tokenizer's code usage and perplexity over the held-out tokens",
    capabilities={"default"},
    needs=("tokens",),
)
def _codebook(model: VAE, images: np.ndarray, settings: EvaluationSettings, wanted: set[str]) -> Measured:
    from vaekit.evaluation.codebook import codebook_usage

    return {"codebook": codebook_usage(model, images, settings.batch_size)}, {}


@METRICS.register("speed", summary="encode / decode throughput in images per second", capabilities={"default"})
def _speed(model: VAE, images: np.ndarray, settings: EvaluationSettings, wanted: set[str]) -> Measured:
    return {"speed": throughput(model, settings.batch_size)}, {}


def _lpips(settings: EvaluationSettings) -> torch.nn.Module:
    from vaekit.features.lpips import pretrained_lpips

    return pretrained_lpips(settings.lpips_backbone, settings.lpips_backbone_weights, settings.lpips_linear_weights)


def _feature_network(settings: EvaluationSettings) -> tuple[torch.nn.Module, str]:
    if settings.features == "inception":
        from vaekit.features.inception import pretrained_fid_inception

        network = pretrained_fid_inception(settings.inception_weights)
        return network, "FID Inception v3 (pt_inception-2015-12-05), pool3 2048-d, bilinear resize to 299"
    from vaekit.features.classifier import load_classifier

    classifier = load_classifier(settings.features)
    return _Features(classifier), f"classifier {settings.features} ({classifier.feature_dim}-d penultimate layer)"


class _Features(torch.nn.Module):
    def __init__(self, classifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, images):
        return self.classifier.features(images)


@METRICS.register("fid", summary="Frechet distance of samples to the held-out images (Inception or a classifier)")
def _generation(model: VAE, images: np.ndarray, settings: EvaluationSettings, wanted: set[str]) -> Measured:
    result, details = _generation_scores(model, images, settings, wanted)
    return {"generation": result}, details


METRICS.add("kid", _generation, summary="kernel inception distance of samples (mean and std over subsets)")
METRICS.add(
    "prdc", _generation, summary="precision / recall and density / coverage of samples, in FID's features (k = 5)"
)
METRICS.add("rfid", _generation, summary="Frechet distance of reconstructions to their originals")


def _generation_scores(model: VAE, images: np.ndarray, settings: EvaluationSettings, wanted: set[str]):
    network, description = _feature_network(settings)
    network = network.to(next(model.parameters()).device)
    loader = BatchLoader(images, settings.batch_size, shuffle=False, drop_last=False)
    real = extract_features(network, loader, "features of the held-out images", len(images))
    result: dict[str, float] = {}
    if "rfid" in wanted:  # reconstructions against their originals, in the same features
        device = next(model.parameters()).device
        loader = BatchLoader(images, settings.batch_size, shuffle=False, drop_last=False, device=device)
        with model.evaluating():
            reconstructed = extract_features(
                network, (model.reconstruct(batch) for batch in loader), "features of reconstructions", len(images)
            )
        result["rfid"] = frechet_distance(real, reconstructed)
        if not wanted & {"fid", "kid", "prdc"}:
            return result, {"feature_network": description, "n_real": len(real), "n_reconstructed": len(real)}
    # the samples are drawn and reduced to features chunk by chunk: memory holds one chunk, not -n images
    samples = iter_samples(model, settings.n_samples, seed=settings.seed)
    fake = extract_features(network, samples, "features of samples", settings.n_samples)
    if "fid" in wanted:
        result["fid"] = frechet_distance(real, fake)
    if "kid" in wanted:
        result["kid"], result["kid_std"] = kernel_inception_distance(
            real, fake, settings.kid_subsets, settings.kid_subset_size, settings.seed
        )
        if result["kid_std"] is None:  # every subset was the whole of both sets: no spread to report
            del result["kid_std"]
    if "prdc" in wanted:
        result |= precision_recall_density_coverage(real, fake)
    details = {
        "feature_network": description,
        "n_real": len(real),
        "n_fake": len(fake),
        "sample_temperature": 1.0,
        "sampler": _sampler_name(model),
    }
    return result, details


def _sampler_name(model: VAE) -> str:
    sampler = getattr(model, "latent_sampler", None)
    if sampler is None:
        return "prior: uniform codes" if latent_has(model, "tokens") else "prior N(0, I)"
    return sampler.describe() if hasattr(sampler, "describe") else type(sampler).__name__


@METRICS.register("prior_hole", summary="how far prior draws fall from where the images were encoded")
def _prior_hole(model: VAE, images: np.ndarray, settings: EvaluationSettings, wanted: set[str]) -> Measured:
    from vaekit.models.samplers import posterior_means, prior_hole

    means = posterior_means(model, images, settings.batch_size)
    generator = torch.Generator().manual_seed(settings.seed)
    result = {"prior": prior_hole(model.prior_sample(len(means) // 2, generator=generator).cpu(), means)}
    sampler = getattr(model, "latent_sampler", None)
    if sampler is not None:
        result["sampler"] = prior_hole(sampler.draw(len(means) // 2, generator=generator), means)
    details = {
        "prior_hole": "nearest-neighbour distances to the posterior means of half the evaluated images: prior "
        "draws (and the sampler's, when one is in use) against the other half's own"
    }
    return {"prior_hole": result}, details


def fixed(value: float) -> str:
    """A number as a person reads a headline figure: fixed notation (14,450.3, not 1.445e+04), four
    decimals below a thousand, scientific only below a thousandth."""
    magnitude = abs(value)
    if magnitude != magnitude or magnitude == float("inf"):
        return str(value)
    if magnitude >= 1000:
        return f"{value:,.1f}"
    return f"{value:.4f}" if magnitude >= 1e-3 or value == 0 else f"{value:.3e}"


def write_report(report: dict[str, Any], path: str | Path) -> tuple[Path, Path]:
    """``path`` (JSON) and the same name with ``.md``: a short human summary with the settings."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(report, indent=2, default=float))
    lines = [
        f"# Evaluation of {report['run'] or report['model']['class']}",
        "",
        f"{report['data']['images']} images of `{report['data']['source']}` ({report['data']['split']} split); "
        f"{report['model']['class']} with {report['model']['parameters']:,} parameters, "
        f"{report['model']['likelihood']} likelihood; {report['created']}.",
        "",
        f"Likelihood units: {report['model']['likelihood_units']}.",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for name, value in dotted_items(report["metrics"]).items():
        if isinstance(value, list | dict) or value is None:
            continue
        shown = fixed(value) if isinstance(value, float) else str(value)
        lines.append(f"| {name} | {shown} |")
    lines += ["", "Settings:", "", "```", json.dumps(report["settings"], indent=2), "```", ""]
    markdown = path.with_suffix(".md")
    write_atomically(markdown, "\n".join(lines))
    return path, markdown
