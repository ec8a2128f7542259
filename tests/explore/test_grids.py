import numpy as np
import torch
from PIL import Image

from vaekit.explore.grids import interleave, make_grid, save_grid


def test_grid_layout_and_padding():
    images = torch.stack([torch.full((3, 4, 4), v) for v in (0.0, 0.5, 1.0)])
    grid = make_grid(images, nrow=2, padding=1)
    assert grid.shape == (1 + 2 * 5, 1 + 2 * 5, 3)
    assert grid[1, 1].tolist() == [0, 0, 0] and grid[1, 6].tolist() == [128, 128, 128]
    assert grid[6, 1].tolist() == [255, 255, 255] and grid[0, 0].tolist() == [255, 255, 255]


def test_gray_images_are_shown_as_rgb(tmp_path):
    path = save_grid(torch.rand(4, 1, 8, 8), tmp_path / "g.png", scale=2)
    with Image.open(path) as picture:
        assert picture.mode == "RGB" and picture.size == (2 * (2 + 2 * 10), 2 * (2 + 2 * 10))


def test_interleave_puts_reconstructions_under_their_originals():
    originals, recon = torch.zeros(4, 1, 1, 1), torch.ones(4, 1, 1, 1)
    rows = interleave(originals, recon, per_row=2).flatten().tolist()
    assert rows == [0, 0, 1, 1, 0, 0, 1, 1]
    assert np.array_equal(make_grid(torch.zeros(1, 3, 2, 2), padding=0), np.zeros((2, 2, 3), np.uint8))
