"""The VAE base class: modes, encoding, generation."""

import torch


def test_evaluating_restores_the_mode_even_after_an_error():
    from tests.helpers import tiny_config
    from vaekit.models import create_model

    model = create_model(tiny_config()).train()
    with model.evaluating():
        assert not model.training
    assert model.training
    try:
        with model.evaluating():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert model.training


def test_posterior_means_leave_batchnorm_statistics_alone():
    import numpy as np

    from tests.helpers import tiny_config
    from vaekit.models import create_model
    from vaekit.models.samplers import posterior_means

    model = create_model(tiny_config(**{"model.norm": "batch"})).train()
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    posterior_means(model, np.random.default_rng(0).integers(0, 256, (8, 3, 16, 16), dtype=np.uint8))
    assert all(torch.equal(before[k], model.state_dict()[k]) for k in before) and model.training


def test_evaluating_restores_the_mode_it_found_train_or_eval():
    from tests.helpers import tiny_config
    from vaekit.models import create_model

    model = create_model(tiny_config(**{"model.norm": "batch"}))
    for before in (True, False):
        model.train(before)
        with model.evaluating():
            assert not model.training
        assert model.training is before


def test_generate_with_a_seed_repeats_seed_zero_included():
    from tests.helpers import tiny_config
    from vaekit.models import create_model

    model = create_model(tiny_config())
    assert torch.equal(model.generate(4, seed=0), model.generate(4, seed=0))
    assert not torch.equal(model.generate(4, seed=0), model.generate(4, seed=1))
