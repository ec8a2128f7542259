import pytest
import torch
from torch import nn

from vaekit.models.blocks import Conv2d


def _pair(kernel=4, **options):
    torch.manual_seed(0)
    reference = nn.Conv2d(8, 16, kernel, **options)
    lowered = Conv2d(8, 16, kernel, **options)
    lowered.load_state_dict(reference.state_dict())
    return reference, lowered


@pytest.mark.parametrize(
    ("size", "options"),
    [
        (3, {"stride": 2, "padding": 1}),  # 1x1 output: the matmul path
        (4, {"stride": 2, "padding": 1}),  # 2x2 output: the matmul path
        (14, {"stride": 2, "padding": 1}),  # 7x7 output: oneDNN
        (3, {"stride": 2, "padding": 1, "padding_mode": "reflect"}),  # unfold pads with zeros only
        (4, {"padding": "same"}),
        (3, {"kernel": 2, "dilation": 2}),  # 1x1 output only when the dilation is counted
        (5, {"kernel": 3, "dilation": 2, "padding": 1}),
        (3, {"stride": 2, "padding": 1, "groups": 2}),  # grouped: unfold + one matmul would be wrong
    ],
)
def test_the_small_output_conv_computes_what_nn_conv2d_computes_with_the_same_gradients(size, options):
    reference, lowered = _pair(**options)
    x = torch.randn(5, 8, size, size, requires_grad=True)
    x_lowered = x.detach().clone().requires_grad_()
    torch.testing.assert_close(lowered(x_lowered), reference(x), rtol=1e-4, atol=1e-5)
    reference(x).square().sum().backward()
    lowered(x_lowered).square().sum().backward()
    torch.testing.assert_close(x_lowered.grad, x.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(lowered.weight.grad, reference.weight.grad, rtol=1e-4, atol=1e-4)


def test_the_small_output_conv_follows_bf16_autocast():
    _, lowered = _pair(stride=2, padding=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert lowered(torch.randn(2, 8, 3, 3)).dtype == torch.bfloat16


def test_upsampling_without_a_norm_keeps_its_bias_and_with_one_leaves_it_to_the_norm():
    from vaekit.models.blocks import conv_up

    assert conv_up(8, 4, 4, 4, 8, "none", "relu")[0].bias is not None
    assert conv_up(8, 4, 4, 4, 8, "batch", "relu")[0].bias is None
