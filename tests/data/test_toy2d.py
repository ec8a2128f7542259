"""The 2-D point sets of Soft-IntroVAE's density experiments."""

import math

import pytest
import torch

from vaekit.data.toy2d import TOY2D_DATASETS, grid_range, sample_toy2d


@pytest.mark.parametrize("name", TOY2D_DATASETS)
def test_each_set_gives_n_float_points_reproducibly_and_inside_its_square(name):
    a = sample_toy2d(name, 1001, torch.Generator().manual_seed(3))
    b = sample_toy2d(name, 1001, torch.Generator().manual_seed(3))
    assert a.shape == (1001, 2) and a.dtype == torch.float32 and torch.equal(a, b)
    inside = (a.abs() <= grid_range(name)).all(1).float().mean()
    assert inside > 0.99


def test_eight_gaussians_sit_on_a_circle_of_radius_2_over_1_414():
    points = sample_toy2d("8gaussians", 4000, torch.Generator().manual_seed(0))
    radius = points.norm(dim=1)
    assert radius.mean().item() == pytest.approx(2 / 1.414, abs=0.01)
    angles = torch.atan2(points[:, 1], points[:, 0]) / (math.pi / 4)
    assert (angles - angles.round()).abs().max() < 0.15  # at multiples of 45 degrees
    assert len(torch.unique(angles.round() % 8)) == 8


def test_rings_have_four_radii_and_the_checkerboard_eight_cells():
    rings = sample_toy2d("rings", 8000, torch.Generator().manual_seed(0)).norm(dim=1)
    for radius in (0.75, 1.5, 2.25, 3.0):
        assert ((rings - radius).abs() < 0.3).float().mean() > 0.15
    board = sample_toy2d("checkerboard", 8000, torch.Generator().manual_seed(0))
    cells = {(int(x), int(y)) for x, y in torch.floor(board / 2).tolist()}
    assert len(cells) == 8
    assert all((x + y) % 2 == 0 for x, y in cells)


def test_the_spirals_are_point_symmetric():
    points = sample_toy2d("2spirals", 4000, torch.Generator().manual_seed(0))
    assert points.mean(0).abs().max() < 0.1


def test_an_unknown_set_is_named_with_the_choices():
    with pytest.raises(ValueError, match="8gaussians"):
        sample_toy2d("moons", 10)


def test_the_two_spiral_arms_hold_half_of_the_points_each(monkeypatch):
    """With every draw fixed, each arm is one repeated point: the first n // 2 on one arm."""
    from vaekit.data import toy2d

    monkeypatch.setattr(toy2d.torch, "rand", lambda n, generator=None: torch.full((n,), 0.5))
    monkeypatch.setattr(toy2d.torch, "randn", lambda *shape, generator=None: torch.zeros(*shape))
    points = toy2d._spirals(7, None)
    first = points[0]
    assert (points == first).all(1).sum() == 3 and (points == -first).all(1).sum() == 4
