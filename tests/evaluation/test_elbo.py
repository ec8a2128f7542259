import numpy as np
import torch

from tests.helpers import tiny_config
from vaekit.evaluation.elbo import evaluate_elbo, likelihood_units
from vaekit.evaluation.likelihood import iwae_nll
from vaekit.models import create_model


def test_neg_elbo_is_repeatable_and_leaves_the_random_stream_alone():
    model = create_model(tiny_config(**{"likelihood.name": "bernoulli", "likelihood.binarize": "dynamic"}))
    images = np.random.default_rng(0).integers(0, 256, (10, 3, 16, 16), dtype=np.uint8)
    torch.manual_seed(5)
    expected_next = torch.rand(1)
    torch.manual_seed(5)
    first = evaluate_elbo(model, images, batch_size=4)
    assert torch.equal(torch.rand(1), expected_next)
    assert evaluate_elbo(model, images, batch_size=4) == first
    assert first["neg_elbo"] == first["nll"] + first["kl"]
    assert first["bits_per_dim"] == first["neg_elbo"] / (3 * 16 * 16 * np.log(2))


def test_the_8bit_bound_is_reported_where_the_likelihood_is_one_of_pixel_values():
    images = np.random.default_rng(0).integers(0, 256, (6, 3, 16, 16), dtype=np.uint8)
    for name in ("gaussian", "laplace"):
        model = create_model(tiny_config(**{"likelihood.name": name}))
        result = evaluate_elbo(model, images)
        assert result["discrete_neg_elbo"] > 0 and result["discrete_neg_elbo"] > result["kl"]
        assert result["discrete_bits_per_dim"] == result["discrete_neg_elbo"] / (3 * 16 * 16 * np.log(2))
        tighter = iwae_nll(model, images, k=20)
        assert 0 < tighter["discrete_iwae_nll"] <= result["discrete_neg_elbo"] + 1e-3  # the IWAE bound is tighter
    grey = create_model(tiny_config(**{"likelihood.name": "bernoulli"}))
    assert "discrete_neg_elbo" not in evaluate_elbo(grey, images)
    assert "not a likelihood of 8-bit images" in likelihood_units(grey)
