"""Soft-IntroVAE's residual network (``model.arch: resnet``)."""

import pytest
import torch

from tests.helpers import tiny_config
from vaekit.models import create_model
from vaekit.models.resnet import CHANNELS


def _resnet(**overrides):
    return create_model(tiny_config(**{"model.arch": "resnet", "model.channels": [], **overrides}))


@pytest.mark.parametrize("size", [28, 32, 64])
def test_published_widths_for_each_size_reproduce_the_image(size):
    model = _resnet(**{"data.image_size": size, "data.channels": 1 if size == 28 else 3})
    channels = 1 if size == 28 else 3
    out = model(torch.rand(2, channels, size, size))
    assert out.params.shape == (2, channels, size, size) and out.z.shape == (2, 4)
    widths = [m.conv1.out_channels for m in model.encoder.main if hasattr(m, "conv1")]
    assert widths == [*CHANNELS[size][1:], CHANNELS[size][-1]]


def test_module_names_follow_the_official_code():
    model = _resnet(**{"data.image_size": 32})
    names = dict(model.encoder.main.named_children())
    assert "res_in_16" in names and "down_to_8" in names and "res_in_4" in names
    decoder = dict(model.decoder.main.named_children())
    assert "up_to_8" in decoder and "predict" in decoder
    assert isinstance(model.encoder.fc, torch.nn.Linear) and model.encoder.fc.out_features == 2 * 4


def test_a_size_the_widths_do_not_divide_is_refused():
    with pytest.raises(ValueError, match="divisible by 2"):
        _resnet(**{"data.image_size": 20, "model.channels": [4, 8, 16]})


def test_residual_blocks_add_their_shortcut():
    from vaekit.models.resnet import ResidualBlock

    block = ResidualBlock(4, 4).eval()
    for module in (block.conv1, block.conv2):
        torch.nn.init.zeros_(module.weight)
    x = torch.randn(1, 4, 5, 5)
    expected = torch.nn.functional.leaky_relu(block.bn2(x), 0.2)  # conv path is zero: only the shortcut
    torch.testing.assert_close(block(x), expected)


def test_the_shortcut_is_added_before_the_second_batch_norm_as_in_the_official_block():
    from vaekit.models.resnet import ResidualBlock

    block = ResidualBlock(4, 4).eval()
    block.bn2.running_mean.fill_(0.5)
    block.bn2.running_var.fill_(4.0)  # a normalisation that tells bn2(a + b) from bn2(a) + b
    x = torch.randn(2, 4, 5, 5, generator=torch.Generator().manual_seed(0))
    conv_path = block.conv2(block.relu1(block.bn1(block.conv1(x))))
    expected = torch.nn.functional.leaky_relu(block.bn2(conv_path + x), 0.2)
    torch.testing.assert_close(block(x), expected)
