import pytest
import torch

from tests.helpers import tiny_config
from vaekit.engine.precision import Precision
from vaekit.models import create_model
from vaekit.models.style import StyleConfig, level_channels
from vaekit.objectives import StepInfo, create_objective

SMALL = {
    "model.arch": "style",
    "model.style.channel_base": 1024,
    "model.style.max_channels": 16,
    "model.style.mapping_layers": 2,
    "model.style.style_dim": 8,
    "model.latent_dim": 10,
}


def _style(**overrides):
    return create_model(tiny_config(**{**SMALL, **overrides}))


def test_published_feature_maps_per_level():
    assert [level_channels(2**r, StyleConfig()) for r in range(2, 9)] == [512, 512, 512, 256, 128, 64, 32]


@pytest.mark.parametrize("size", [64, 128, 256])
def test_shapes_at_published_sizes(size):
    model = _style(**{"data.image_size": size})
    x = torch.rand(2, 3, size, size)
    out = model(x)
    assert out.params.shape == x.shape and out.z.shape == (2, 10)
    assert len(model.decoder.levels) == len(range(2, size.bit_length()))


def test_noise_scales_start_at_zero_and_eval_is_deterministic():
    model = _style(**{"data.image_size": 16})
    scales = [m.scale for m in model.modules() if type(m).__name__ == "NoiseInjection"]
    assert scales and all(torch.equal(s, torch.zeros_like(s)) for s in scales)
    for s in scales:
        s.data.fill_(1.0)
    z = torch.randn(2, 10)
    model.eval()
    assert torch.equal(model.decode(z), model.decode(z))
    model.train()
    assert not torch.equal(model.decode(z), model.decode(z))


def test_options_change_the_network():
    plain = _style(**{"data.image_size": 16, "model.style.noise": False, "model.style.blur": False})
    assert not any(type(m).__name__ in ("NoiseInjection", "Blur") for m in plain.modules())
    adain = _style(**{"data.image_size": 16, "model.style.modulation": "adain"})
    modulation = next(m for m in adain.modules() if type(m).__name__ == "StyleModulation")
    assert modulation.dense.bias[: modulation.dense.out_features // 2].eq(1).all()


def test_level_latents_style_each_level_with_its_own_chunk():
    model = _style(**{"data.image_size": 16, "model.latent_dim": 9, "model.style.level_latents": True}).eval()
    assert model.latent_groups == [("4px", 0, 3), ("8px", 3, 6), ("16px", 6, 9)]
    coarse = []
    model.decoder.levels[0][1].register_forward_hook(lambda module, args, output: coarse.append(output))
    z = torch.randn(1, 9)
    fine_changed, coarse_changed = z.clone(), z.clone()
    fine_changed[:, 6:] += 3.0
    coarse_changed[:, :3] += 3.0
    images = [model.decode(v) for v in (z, fine_changed, coarse_changed)]
    assert torch.equal(coarse[0], coarse[1])  # the 4 px level ignores the 16 px chunk
    assert not torch.equal(coarse[0], coarse[2])  # ... and follows its own
    assert not torch.equal(images[0], images[1])  # the 16 px chunk still changes the image


def test_level_latents_need_an_even_split():
    with pytest.raises(ValueError, match="split evenly into 3 levels"):
        _style(**{"data.image_size": 16, "model.latent_dim": 10, "model.style.level_latents": True})


def test_per_level_kl_adds_up_to_the_total_and_is_weighted():
    config = tiny_config(
        **{
            **SMALL,
            "data.image_size": 16,
            "model.latent_dim": 9,
            "model.style.level_latents": True,
            "objective.kl.group_weights": [0.0, 0.0, 0.0],
        },
    )
    model = create_model(config)
    objective = create_objective(model, config, Precision("fp32", torch.device("cpu")))
    scalars = objective.step(torch.rand(4, 3, 16, 16), StepInfo(0, 0.0))
    total = scalars["kl_4px"] + scalars["kl_8px"] + scalars["kl_16px"]
    torch.testing.assert_close(total, scalars["kl"])
    torch.testing.assert_close(scalars["loss"], scalars["nll"])  # every level weighted 0


def test_group_weights_must_match_the_groups():
    config = tiny_config(**{"objective.kl.group_weights": [1.0, 2.0]})
    with pytest.raises(ValueError, match="group_weights has 2 entries"):
        create_objective(create_model(config), config, Precision("fp32", torch.device("cpu")))


def test_too_small_channel_base_is_a_clear_error():
    with pytest.raises(ValueError, match="leaves no feature maps at 256 px"):
        _style(**{"data.image_size": 256, "model.style.channel_base": 128})


def test_non_power_of_two_is_rejected():
    with pytest.raises(ValueError, match="power-of-two"):
        _style(**{"data.image_size": 28})


# ------------------------------------------------------------------ the layers, one formula each
def test_noise_is_one_map_per_image_shared_by_all_channels_times_each_channel_scale():
    from vaekit.models.style import NoiseInjection

    injection = NoiseInjection(4).train()
    injection.scale.data = torch.tensor([1.0, 2.0, -1.0, 0.5]).view(1, 4, 1, 1)
    x = torch.zeros(2, 4, 5, 5)
    added = injection(x) / injection.scale
    for c in range(1, 4):
        torch.testing.assert_close(added[:, c], added[:, 0])
    assert not torch.equal(added[0, 0], added[1, 0])  # a map per image


def test_blur_keeps_a_flat_image_flat_and_is_the_normalised_binomial():
    from vaekit.models.style import Blur

    flat = torch.full((1, 2, 6, 6), 3.0)
    torch.testing.assert_close(Blur()(flat)[:, :, 1:-1, 1:-1], flat[:, :, 1:-1, 1:-1])
    impulse = torch.zeros(1, 1, 5, 5)
    impulse[0, 0, 2, 2] = 1.0
    expected = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16
    torch.testing.assert_close(Blur()(impulse)[0, 0, 1:4, 1:4], expected)


def test_stylize_is_x_times_scale_plus_one_plus_bias():
    from vaekit.models.style import StyleModulation

    modulation = StyleModulation(3, 2, "stylize")
    torch.nn.init.zeros_(modulation.dense.weight)
    x = torch.randn(2, 2, 4, 4)
    torch.testing.assert_close(modulation(x, torch.randn(2, 3)), x)  # zero style: identity
    modulation.dense.bias.data = torch.tensor([0.5, -1.0, 0.1, 0.2])
    expected = x * torch.tensor([1.5, 0.0]).view(1, 2, 1, 1) + torch.tensor([0.1, 0.2]).view(1, 2, 1, 1)
    torch.testing.assert_close(modulation(x, torch.randn(2, 3)), expected)


def test_a_style_layer_normalises_after_the_activation():
    import torch.nn.functional as F

    from vaekit.models.style import StyleLayer

    layer = StyleLayer(2, 2, StyleConfig(style_dim=3, noise=False, blur=False), upsample=False, conv=False)
    torch.nn.init.zeros_(layer.modulation.dense.weight)
    x = torch.randn(2, 2, 4, 4) + 0.3
    expected = F.instance_norm(F.leaky_relu(x, 0.2))
    torch.testing.assert_close(layer(x, torch.randn(2, 3)), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mapping_layers", [0, 4, 8])
def test_at_the_start_the_mapping_passes_z_on_at_its_own_scale(mapping_layers):
    """A mapping that shrank z would leave the decoder deaf to it; the encoder would then spread its
    codes far beyond the prior and samples from the prior would all decode to one face."""
    torch.manual_seed(0)
    model = _style(**{"model.style.mapping_layers": mapping_layers, "model.style.style_dim": 128})
    z = torch.randn(4096, 10)
    with torch.no_grad():
        w = model.decoder.mapping(z)
    assert 0.3 < w.pow(2).mean().sqrt() < 3.0
    assert w.std(0).mean() > 0.3  # and w differs from one z to another


def test_each_style_layer_starts_as_a_unit_gain_affine_map_of_w():
    modulation = _style().decoder.levels[0][0].modulation.dense
    assert torch.equal(modulation.bias, torch.zeros_like(modulation.bias))
    assert modulation.weight.std().item() == pytest.approx(modulation.in_features**-0.5, rel=0.15)
