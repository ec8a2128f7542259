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


def test_decoding_latents_to_images_uses_running_statistics_whatever_the_batch():
    from tests.helpers import tiny_config
    from vaekit.models import create_model

    model = create_model(tiny_config(**{"model.norm": "batch"})).train()
    with torch.no_grad():  # move the BatchNorm running statistics away from their start
        for _ in range(3):
            model(torch.rand(16, 3, 16, 16) * 4)
    z = torch.randn(6, *model.latent_shape, generator=torch.Generator().manual_seed(0))
    together = model.decode_images(z)
    alone = torch.cat([model.decode_images(z[i : i + 1]) for i in range(6)])
    torch.testing.assert_close(together, alone)  # batch statistics would make each depend on the others
    assert model.training  # and the mode it was in is back


def test_own_networks_whose_logvar_is_shaped_unlike_the_mean_are_refused():
    import pytest
    from torch import nn

    from vaekit.models import VAE

    class Encoder(nn.Module):
        def forward(self, x):
            return torch.zeros(len(x), 3), torch.zeros(len(x), 4)

    model = VAE.from_modules(Encoder(), nn.Linear(3, 12), 3)
    with pytest.raises(ValueError, match=r"expected .* for both"):
        model.encode(torch.zeros(2, 12))


def test_saving_a_loaded_model_keeps_its_measured_latent_scaling(tmp_path):
    import vaekit
    from tests.helpers import tiny_config

    run = vaekit.train(tiny_config(**{"train.max_steps": 2}), out=tmp_path / "run")
    model = vaekit.load(run)
    scaling = model.info["latent_scaling"]
    assert scaling.get("scaling_factor")
    model.save_pretrained(tmp_path / "copy")
    assert vaekit.load(tmp_path / "copy").info["latent_scaling"] == scaling
