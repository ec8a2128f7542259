import numpy as np
import torch

from tests.helpers import tiny_config
from vaekit.evaluation.elbo import evaluate_elbo
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
