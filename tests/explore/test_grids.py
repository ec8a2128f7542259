import numpy as np
import pytest
import torch
from PIL import Image

from vaekit.explore.grids import interleave, make_grid, save_grid, save_image
from vaekit.schema import ConfigError


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


def test_one_image_is_saved_at_its_own_size_without_a_border(tmp_path):
    image = torch.rand(3, 10, 14)
    with Image.open(save_image(image, tmp_path / "one.png")) as picture:
        assert picture.size == (14, 10)
        assert np.array_equal(np.asarray(picture), make_grid(image[None], padding=0))
    with Image.open(save_image(image, tmp_path / "big.png", scale=3)) as picture:
        assert picture.size == (42, 30)


def test_an_enlargement_past_the_request_budget_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("VAEKIT_MAX_REQUEST_BYTES", str(10_000))
    with pytest.raises(ConfigError, match="--scale"):
        save_grid(torch.rand(4, 3, 16, 16), tmp_path / "g.png", scale=8)
    assert not (tmp_path / "g.png").exists()


def test_a_runs_sample_grid_follows_its_seed(tmp_path):
    from PIL import Image

    from tests.helpers import tiny_config
    from vaekit.explore.grids import save_run_grids
    from vaekit.models import create_model

    model = create_model(tiny_config())
    originals = torch.rand(4, 3, 16, 16)

    def samples(seed, tag):
        path = save_run_grids(model, originals, tmp_path, tag, 4, seed)["samples"]
        return np.asarray(Image.open(path))

    assert np.array_equal(samples(1, "a"), samples(1, "b")) and not np.array_equal(samples(1, "c"), samples(2, "d"))
