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
