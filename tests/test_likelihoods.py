import math

import pytest
import torch
from torch import distributions as D

from vaekit.config import LikelihoodConfig
from vaekit.likelihoods import Bernoulli, Gaussian, Laplace, create_likelihood


@pytest.fixture
def params():
    return torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def target():
    return torch.rand(3, 2, 4, 4, generator=torch.Generator().manual_seed(1))


def _reference(dist, target):
    return -dist.log_prob(target).flatten(1).sum(1)


def test_bernoulli_is_the_summed_negative_log_likelihood(params):
    binary = (torch.rand_like(params) > 0.5).float()
    expected = _reference(D.Bernoulli(logits=params), binary)
    torch.testing.assert_close(Bernoulli().nll(params, binary), expected)


def test_gaussian_fixed_scale_matches_torch_distributions(params, target):
    likelihood = Gaussian(scale=0.3, output="sigmoid")
    expected = _reference(D.Normal(torch.sigmoid(params), 0.3), target)
    torch.testing.assert_close(likelihood.nll(params, target), expected)


def test_laplace_matches_torch_distributions(params, target):
    likelihood = Laplace(scale=0.1, output="identity")
    torch.testing.assert_close(likelihood.nll(params, target), _reference(D.Laplace(params, 0.1), target))


def test_laplace_is_l1_up_to_scale_and_constant(params, target):
    likelihood = Laplace(scale=1.0, output="identity")
    l1 = (params - target).abs().flatten(1).sum(1)
    torch.testing.assert_close(likelihood.nll(params, target), l1 + 32 * math.log(2))


def test_learned_scale_is_a_parameter_that_gets_gradients(params, target):
    likelihood = Gaussian(scale=0.5, learn_scale=True)
    likelihood.nll(params, target).sum().backward()
    assert likelihood.log_scale.grad is not None
    assert "log_scale" in dict(likelihood.named_parameters())
    assert "log_scale" not in dict(Gaussian(scale=0.5).named_parameters())


def test_dynamic_binarisation_only_when_stochastic():
    x = torch.full((1000,), 0.3)
    likelihood = Bernoulli(binarize="dynamic")
    assert torch.equal(likelihood.prepare(x), x)
    sampled = likelihood.prepare(x, stochastic=True)
    assert set(sampled.unique().tolist()) == {0.0, 1.0} and 0.2 < sampled.mean() < 0.4


def test_tanh_output_maps_data_to_minus_one_one_and_back():
    likelihood = Gaussian(output="tanh")
    x = torch.tensor([0.0, 0.5, 1.0])
    assert likelihood.prepare(x).tolist() == [-1.0, 0.0, 1.0]
    torch.testing.assert_close(likelihood.mean(torch.atanh(torch.tensor([-0.5, 0.5]))), torch.tensor([0.25, 0.75]))


@pytest.mark.parametrize("name", ["bernoulli", "gaussian", "laplace"])
def test_the_mean_image_of_sigmoid_outputs_is_the_sigmoid(name, params):
    image = create_likelihood(LikelihoodConfig(name=name)).mean(params * 3)
    torch.testing.assert_close(image, torch.sigmoid(params * 3))


def test_the_mean_image_of_identity_outputs_is_clamped_to_the_unit_range(params):
    image = create_likelihood(LikelihoodConfig(name="gaussian", output="identity")).mean(params * 3)
    torch.testing.assert_close(image, (params * 3).clamp(0, 1))
    assert (image == 0).any() and (image == 1).any()


def test_unknown_likelihood():
    with pytest.raises(ValueError, match="unknown likelihood"):
        create_likelihood(LikelihoodConfig(name="poisson"))


@pytest.mark.parametrize("name", ["gaussian", "laplace"])
def test_the_config_decides_whether_the_scale_is_learned(name):
    learned = create_likelihood(LikelihoodConfig(name=name, scale=0.2, learn_scale=True))
    fixed = create_likelihood(LikelihoodConfig(name=name, scale=0.2, learn_scale=False))
    assert [n for n, _ in learned.named_parameters()] == ["log_scale"]
    assert list(fixed.parameters()) == [] and "log_scale" in dict(fixed.named_buffers())
    assert learned.log_scale.item() == pytest.approx(math.log(0.2))


@pytest.mark.parametrize("cls", [Gaussian, Laplace])
@pytest.mark.parametrize("output", ["sigmoid", "tanh"])
@pytest.mark.parametrize("scale", [0.001, 0.05, 0.5])
def test_the_8bit_masses_of_every_pixel_level_sum_to_one(cls, output, scale):
    likelihood = cls(scale=scale, output=output)
    levels = likelihood.prepare(torch.arange(256.0).view(256, 1) / 255)
    for location in (-3.0, 0.3, 2.0):  # pre-activations: the density's centre anywhere in the range
        masses = torch.exp(-likelihood.discretised_nll(torch.full((256, 1), location), levels).double())
        assert masses.sum().item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("cls", [Gaussian, Laplace])
def test_a_wide_density_gives_each_bin_its_density_times_the_bin_width(cls, params, target):
    likelihood = cls(scale=0.5)  # smooth on the scale of a bin: P(bin) ~ p(x) / 255
    target = torch.round(target.clamp(0.1, 0.9) * 255) / 255
    discrete, density = likelihood.discretised_nll(params, target), likelihood.nll(params, target)
    torch.testing.assert_close(discrete, density + target[0].numel() * math.log(255), rtol=1e-4, atol=1e-2)


def test_a_narrow_density_on_the_right_level_is_almost_certain():
    likelihood = Gaussian(scale=1e-4, output="identity")
    target = torch.tensor([[0.0, 100 / 255, 1.0]])
    assert likelihood.discretised_nll(target, target).item() == pytest.approx(0.0, abs=1e-6)
    far = likelihood.discretised_nll(target + 0.5, target).item()  # mass underflows: the density takes over
    assert math.isfinite(far) and far > 1e4


def test_only_likelihoods_of_pixel_values_have_an_8bit_nll():
    assert Bernoulli("dynamic").measures_pixels and not Bernoulli("none").measures_pixels
    logits, binary = torch.randn(2, 5), torch.randint(0, 2, (2, 5)).float()
    torch.testing.assert_close(Bernoulli("dynamic").discretised_nll(logits, binary), Bernoulli().nll(logits, binary))
    with pytest.raises(NotImplementedError, match="not a probability of 8-bit pixel values"):
        Bernoulli("none").discretised_nll(logits, binary)


def test_a_bin_far_in_the_tail_costs_the_density_times_the_whole_bins_width():
    likelihood = Gaussian(scale=1e-4, output="identity")
    target = torch.tensor([[100 / 255]])
    location = target + 40e-4  # forty standard deviations away: the bin's mass underflows float64
    nll = likelihood.discretised_nll(location, target).double().item()
    density = torch.distributions.Normal(location.double(), 1e-4).log_prob(target.double()).item()
    assert nll == pytest.approx(-(density + math.log(1 / 255)), rel=1e-6)  # one bin is 1/255 wide on [0, 1]
