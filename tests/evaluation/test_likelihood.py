import math

import numpy as np
import pytest
import torch

from tests.helpers import tiny_config
from vaekit.evaluation.elbo import evaluate_elbo
from vaekit.evaluation.likelihood import (
    high_frequency_share,
    iwae_nll,
    latent_scaling,
    latent_spectrum,
    latent_usage,
)
from vaekit.models import create_model
from vaekit.models.base import DiagonalGaussian


@pytest.fixture(scope="module")
def model_and_images():
    torch.manual_seed(0)
    model = create_model(tiny_config(**{"likelihood.name": "bernoulli", "likelihood.binarize": "dynamic"}))
    images = np.random.default_rng(0).integers(0, 256, (16, 3, 16, 16), dtype=np.uint8)
    return model, images


def test_k1_matches_the_elbo_in_expectation(model_and_images):
    model, images = model_and_images
    iwae = np.mean([iwae_nll(model, images, k=1, seed=s)["iwae_nll"] for s in range(40)])
    elbo = np.mean([evaluate_elbo(model, images, seed=s)["neg_elbo"] for s in range(40)])
    assert iwae == pytest.approx(elbo, rel=0.002)


def test_the_estimate_does_not_increase_with_k(model_and_images):
    model, images = model_and_images
    estimates = [np.mean([iwae_nll(model, images, k=k, seed=s)["iwae_nll"] for s in range(3)]) for k in (1, 10, 100)]
    assert estimates[0] >= estimates[1] >= estimates[2]


def test_bits_per_dim_only_for_probabilities_never_for_a_density(model_and_images):
    model, images = model_and_images  # a binarised Bernoulli: a probability of its pixels
    result = iwae_nll(model, images, k=2)
    assert result["iwae_bits_per_dim"] == pytest.approx(result["iwae_nll"] / (3 * 16 * 16 * np.log(2)))
    gaussian = create_model(tiny_config())
    continuous = iwae_nll(gaussian, images, k=2)
    assert "iwae_bits_per_dim" not in continuous  # the "+8 bits" of a density compares with nothing
    assert continuous["discrete_iwae_bits_per_dim"] > 0


def test_active_units_count_dimensions_whose_mean_varies(model_and_images, monkeypatch):
    model, images = model_and_images

    def encode(x):  # dimension 0 follows the image, 1..3 are constant
        mean = torch.zeros(len(x), 4)
        mean[:, 0] = x.flatten(1).mean(1) * 10
        return DiagonalGaussian(mean, torch.zeros_like(mean))

    monkeypatch.setattr(model, "encode", encode)
    usage = latent_usage(model, images)
    assert usage["active_units"] == 1 and usage["latent_dims"] == 4
    assert len(usage["kl_per_dim"]) == 4 and usage["kl_per_dim"][1] == 0.0


class _ExactPosterior(torch.nn.Module):
    """The true posterior of x = z + N(0, s^2): q(z|x) = N(x / (1 + s^2), s^2 / (1 + s^2))."""

    def __init__(self, s: float) -> None:
        super().__init__()
        self.s2 = s * s
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # a model needs a parameter (its device)

    def forward(self, x):
        var = torch.full_like(x, self.s2 / (1 + self.s2))
        return x / (1 + self.s2) + self.anchor, var.log()


def test_with_the_exact_posterior_every_k_gives_the_exact_log_likelihood():
    """q = p(z|x) makes every importance weight equal p(x): the estimate is exact for any k,
    which pins the -log k term and log q(z|x) (a posterior std far from 1)."""
    import vaekit

    s = 0.3
    model = vaekit.VAE.from_modules(
        _ExactPosterior(s), torch.nn.Identity(), latent_shape=3, likelihood="gaussian", scale=s, output="identity"
    )
    model.image_shape = (3,)
    x = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32) * np.sqrt(1 + s * s)
    exact = -torch.distributions.Normal(0.0, float(np.sqrt(1 + s * s))).log_prob(torch.from_numpy(x)).sum(1).mean()
    for k in (1, 7, 50):
        assert iwae_nll(model, x, k=k)["iwae_nll"] == pytest.approx(exact.item(), rel=1e-5)


def test_the_high_frequency_share_of_smooth_noisy_and_checkerboard_maps():
    y, x = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    smooth = torch.cos(2 * math.pi * x / 32)[None, None]
    checkerboard = ((x + y) % 2 * 2 - 1)[None, None]
    noise = torch.randn(64, 2, 32, 32, generator=torch.Generator().manual_seed(0))
    assert high_frequency_share(smooth) < 1e-9 and high_frequency_share(checkerboard) > 1 - 1e-9
    # white noise spreads its power evenly: the share is the area outside half the Nyquist radius
    assert high_frequency_share(noise) == pytest.approx(1 - math.pi * 0.5**2 / 4, abs=0.02)


def test_per_channel_latent_statistics_agree_with_the_global_ones():
    from vaekit.models import ARCHITECTURES

    config = tiny_config(**{"model.arch": "autoencoder-kl", **ARCHITECTURES.get("autoencoder-kl").tiny})
    model = create_model(config)
    images = np.random.default_rng(0).integers(0, 256, (12, 3, 16, 16), dtype=np.uint8)
    scaling = latent_scaling(model, images)
    means, stds = torch.tensor(scaling["latents_mean"]), torch.tensor(scaling["latents_std"])
    assert len(means) == model.latent_shape[0] == len(stds)
    assert means.mean().item() == pytest.approx(scaling["shift_factor"], rel=1e-6, abs=1e-9)
    variance = (stds.square() + means.square()).mean() - means.mean().square()  # the law of total variance
    assert variance.sqrt().item() == pytest.approx(scaling["latent_std"], rel=1e-6)
    spectrum = latent_spectrum(model, images)
    assert 0 < spectrum["latent_high_frequency_share"] < 1 and spectrum["spectrum_ratio"] > 0


def test_the_iwae_bound_decodes_in_chunks_sized_by_pixels(model_and_images, monkeypatch):
    import vaekit.limits as limits

    model, images = model_and_images
    decoded = []
    original = model.decode
    monkeypatch.setattr(model, "decode", lambda z: decoded.append(len(z)) or original(z))
    monkeypatch.setattr(limits, "CHUNK_VALUES", 8 * 3 * 16 * 16)  # eight 16 px images
    result = iwae_nll(model, images[:4], k=10, batch_size=4)
    assert max(decoded) <= 8 and sum(decoded) == 4 * 10 and math.isfinite(result["iwae_nll"])


def test_the_running_variance_of_batches_is_the_variance_of_all_rows():
    from vaekit.evaluation.likelihood import RunningVariance

    rows = torch.randn(103, 5, dtype=torch.float64) * torch.tensor([1.0, 10.0, 0.1, 3.0, 1e3]) + 50.0
    running = RunningVariance()
    for batch in rows.split(17):  # uneven batches, the last one short
        running.add(batch)
    torch.testing.assert_close(running.variance(), rows.var(0))
    torch.testing.assert_close(running.mean, rows.mean(0))
    assert running.count == 103


def test_the_discrete_bits_of_a_continuous_likelihood_carry_no_change_of_scale():
    gaussian = create_model(tiny_config())
    images = np.random.default_rng(1).integers(0, 256, (8, 3, 16, 16), dtype=np.uint8)
    result = iwae_nll(gaussian, images, k=2)
    dims = 3 * 16 * 16 * np.log(2)
    assert "iwae_bits_per_dim" not in result  # a density on [0, 1]: no bits per dim
    assert result["discrete_iwae_bits_per_dim"] == pytest.approx(result["discrete_iwae_nll"] / dims)


def test_per_channel_latent_statistics_are_each_channels_own():
    from torch import nn

    from vaekit.models import VAE

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = nn.Parameter(torch.zeros(1))  # (a model has a device through its parameters)

        def forward(self, x):  # channel c holds 10 c + the image's brightness, with no spread
            level = x.mean(dim=(1, 2, 3))[:, None, None, None]
            mean = torch.arange(3.0)[None, :, None, None] * 10 + level.expand(-1, 3, 2, 2)
            return mean, torch.full_like(mean, -40.0)

    model = VAE.from_modules(Encoder(), nn.Identity(), (3, 2, 2), "gaussian")
    model.image_shape = (3, 4, 4)
    images = np.stack([np.full((3, 4, 4), v, np.uint8) for v in (0, 51, 102, 255)])
    result = latent_scaling(model, images, batch_size=3)
    brightness = images.reshape(4, -1).mean(1) / 255
    expected = [10 * c + brightness.mean() for c in range(3)]
    assert result["latents_mean"] == pytest.approx(expected, abs=1e-4)
    assert result["latents_std"] == pytest.approx([brightness.std()] * 3, abs=1e-4)
