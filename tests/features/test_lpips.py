import torch

from vaekit.features.alexnet import AlexNetFeatures
from vaekit.features.lpips import LPIPS


def test_lpips_averages_each_layer_over_its_positions_so_image_size_does_not_scale_it():
    torch.manual_seed(0)
    metric = LPIPS("alex", AlexNetFeatures())
    for name, parameter in metric.named_parameters():
        if name.startswith("lin"):
            parameter.data.uniform_(0, 1)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    y = (x + 0.2).clamp(0, 1)
    tiled = lambda t: t.repeat(1, 1, 2, 2)  # noqa: E731  the same picture four times: 4x the positions
    ratio = metric(tiled(x), tiled(y)) / metric(x, y)
    assert 0.7 < ratio.item() < 1.4  # a spatial sum would give about 4
