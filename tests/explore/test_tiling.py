import torch

from tests.helpers import tiny_config
from vaekit.explore.tiling import _ramp, reconstruct_tiled
from vaekit.models import create_model


def test_the_blend_ramp_rises_over_overlap_plus_one_steps_and_is_never_zero():
    ramp = _ramp(8, 2)[0] / _ramp(8, 2)[0].max()
    torch.testing.assert_close(ramp, torch.tensor([1, 2, 3, 3, 3, 3, 2, 1]) / 3.0)


def test_an_image_smaller_than_a_tile_is_padded_by_repeating_its_edges():
    model = create_model(tiny_config())  # 16 px tiles
    model.reconstruct = lambda tiles: tiles.mean((2, 3), keepdim=True).expand_as(tiles)  # one colour a tile
    image = torch.ones(3, 5, 7)
    torch.testing.assert_close(reconstruct_tiled(model, image), image)  # zero padding would darken it
