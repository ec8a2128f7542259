import pytest
import torch

from tests.helpers import tiny_config
from vaekit.models import create_model

SPATIAL = {"model.arch": "spatial", "model.spatial.residual_blocks": 1, "likelihood.output": "tanh"}


def _spatial(**overrides):
    return create_model(tiny_config(**{**SPATIAL, **overrides}))


@pytest.mark.parametrize(("size", "channels", "downsamplings"), [(16, 12, 2), (32, 24, 2), (64, 4, 3), (40, 12, 2)])
def test_latent_is_a_feature_map(size, channels, downsamplings):
    model = _spatial(**{"data.image_size": size, "model.spatial.latent_channels": channels,
                        "model.spatial.downsamplings": downsamplings})  # fmt: skip
    factor = 2**downsamplings
    assert model.latent_shape == (channels, size // factor, size // factor)
    out = model(torch.rand(2, 3, size, size))
    assert out.z.shape == (2, *model.latent_shape) and out.params.shape == (2, 3, size, size)
    assert model.sample(2).shape == (2, 3, size, size)


def test_the_sample_norm_normalises_each_sample_over_all_channels_and_pixels():
    from vaekit.models.spatial import _norm

    norm = _norm("sample", 64)
    x = torch.randn(2, 64, 4, 4) * torch.arange(1, 65.0).view(1, 64, 1, 1) + torch.arange(64.0).view(1, 64, 1, 1)
    mean = x.mean((1, 2, 3), keepdim=True)
    std = x.var((1, 2, 3), unbiased=False, keepdim=True).add(norm.eps).sqrt()
    torch.testing.assert_close(norm(x), (x - mean) / std, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("norm", ["instance", "group", "sample", "none"])
def test_norms(norm):
    assert _spatial(**{"model.spatial.norm": norm})(torch.rand(2, 3, 16, 16)).params.shape == (2, 3, 16, 16)


def test_encoder_convs_have_no_biases_and_use_leaky_relu_0_1():
    model = _spatial()
    convs = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(conv.bias is None for conv in convs)
    slopes = {m.negative_slope for m in model.modules() if isinstance(m, torch.nn.LeakyReLU)}
    assert slopes == {0.1}


def test_dense_variant_has_a_flat_latent():
    model = _spatial(**{"model.spatial.dense": True, "model.latent_dim": 7})
    assert model.latent_shape == (7,)
    assert model(torch.rand(2, 3, 16, 16)).params.shape == (2, 3, 16, 16)


def test_size_must_divide_by_the_downsampling():
    with pytest.raises(ValueError, match="divisible by 4"):
        _spatial(**{"data.image_size": 18})


def test_the_4x4_same_convolution_pads_one_before_and_two_after_as_tensorflow_does():
    from vaekit.models.spatial import _conv4_same

    conv = _conv4_same(1, 1, bias=False)
    with torch.no_grad():
        conv[1].weight.zero_()
        conv[1].weight[0, 0, 1, 1] = 1.0  # picks the input pixel at the output's own position
    image = torch.rand(1, 1, 6, 6)
    torch.testing.assert_close(conv(image), image)


def test_a_residual_block_whose_body_is_zero_passes_its_input_through():
    from vaekit.models.spatial import ResidualBlock

    block = ResidualBlock(4, "none")
    with torch.no_grad():
        for parameter in block.body.parameters():
            parameter.zero_()
    x = torch.rand(2, 4, 5, 5)  # positive: the LeakyReLU after the sum keeps it
    torch.testing.assert_close(block(x), x)
