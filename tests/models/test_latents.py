import torch
from torch import distributions as D

from vaekit.models.latents import DiagonalGaussian, Point


def _posterior(shape):
    g = torch.Generator().manual_seed(0)
    return DiagonalGaussian(torch.randn(*shape, generator=g), torch.randn(*shape, generator=g))


def test_kl_matches_torch_distributions_for_flat_and_spatial_latents():
    for shape in [(5, 7), (2, 3, 4, 4)]:
        q = _posterior(shape)
        prior = D.Independent(D.Normal(torch.zeros(shape), torch.ones(shape)), len(shape) - 1)
        torch.testing.assert_close(q.kl(), D.kl_divergence(q.distribution, prior))
        assert q.kl().shape == (shape[0],)


def test_kl_per_dim_sums_to_kl():
    q = _posterior((4, 6))
    torch.testing.assert_close(q.kl_per_dim().sum(1), q.kl())


def test_sample_is_reparameterised_with_the_right_moments():
    mean = torch.full((20000, 1), 2.0, requires_grad=True)
    logvar = torch.full((20000, 1), 2 * torch.log(torch.tensor(3.0)).item(), requires_grad=True)  # std 3
    z = DiagonalGaussian(mean, logvar).sample()
    assert abs(z.mean().item() - 2) < 0.1 and abs(z.std().item() - 3) < 0.1
    z.sum().backward()
    assert mean.grad is not None and logvar.grad is not None
    # d z / d logvar = 0.5 * std * eps, so the gradient sums to 0.5 * (z - mean)
    torch.testing.assert_close(logvar.grad, 0.5 * (z - mean).detach())


def test_log_prob_matches_normal_with_the_std_from_the_log_variance():
    q = _posterior((3, 5))
    z = q.sample()
    std = torch.exp(0.5 * q.logvar)  # written out here, not taken from the class under test
    torch.testing.assert_close(q.log_prob(z), D.Normal(q.mean, std).log_prob(z).sum(1))
    torch.testing.assert_close(q.std, std)


def test_kl_is_computed_in_float32_even_from_bf16_parameters():
    g = torch.Generator().manual_seed(0)
    mean = (torch.randn(64, 32, generator=g) * 1e-2).bfloat16()
    logvar = (torch.randn(64, 32, generator=g) * 1e-2).bfloat16()
    kl = DiagonalGaussian(mean, logvar).kl_per_dim()
    assert kl.dtype == torch.float32 and (kl >= 0).all()


def test_an_extreme_encoder_output_is_clamped_so_the_posterior_stays_finite():
    q = DiagonalGaussian(torch.zeros(2, 3), torch.tensor([[1e4, -1e4, 0.0]] * 2))
    assert q.logvar.max() == 20.0 and q.logvar.min() == -30.0
    assert torch.isfinite(q.std).all() and torch.isfinite(q.kl()).all()


def test_a_deterministic_latent_is_its_point_with_no_rate():
    z = torch.randn(3, 4, requires_grad=True)
    point = Point(z)
    assert point.sample() is z and point.mean is z
    assert torch.equal(point.kl(), torch.zeros(3)) and point.auxiliary_loss is None
