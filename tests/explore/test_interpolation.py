import math

import pytest
import torch
from PIL import Image

from vaekit.explore.interpolation import interpolate, save_gif, slerp, variance_preserving


@pytest.mark.parametrize("mode", ["lerp", "slerp"])
def test_interpolation_starts_and_ends_at_the_endpoints(mode):
    a, b = torch.randn(16), torch.randn(16)
    path = interpolate(a, b, 7, mode)
    assert path.shape == (7, 16)
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[-1], b)


def test_slerp_keeps_the_norm_between_equal_norm_points():
    a = torch.tensor([3.0, 0.0])
    b = torch.tensor([0.0, 3.0])
    norms = interpolate(a, b, 5, "slerp").norm(dim=1)
    torch.testing.assert_close(norms, torch.full((5,), 3.0))
    assert interpolate(a, b, 5, "lerp").norm(dim=1)[2] < 2.5


def test_spatial_latents_interpolate_in_their_shape():
    a, b = torch.randn(4, 2, 2), torch.randn(4, 2, 2)
    assert interpolate(a, b, 3, "slerp").shape == (3, 4, 2, 2)


def test_gif_holds_the_ends_and_plays_back_and_forth(tmp_path):
    frames = torch.linspace(0, 1, 5).view(5, 1, 1, 1).expand(5, 3, 4, 4)
    path = save_gif(frames, tmp_path / "a.gif", frame_ms=50, hold_ms=500)
    with Image.open(path) as gif:
        durations, values = [], []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
            values.append(gif.convert("L").getpixel((0, 0)))
    assert gif.n_frames == 8  # 5 forward + 3 back (the ends are not repeated)
    assert durations[0] == 500 and durations[4] == 500 and durations[1] == 50
    assert values[:5] == sorted(values[:5]) and values[5:] == sorted(values[5:], reverse=True)


def test_unknown_mode():
    with pytest.raises(ValueError, match="unknown interpolation mode"):
        interpolate(torch.zeros(2), torch.ones(2), 3, "cubic")


def test_variance_preserving_path_keeps_the_prior_variance():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(20000, generator=g), torch.randn(20000, generator=g)
    path = variance_preserving(a, b, 9)
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[-1], b)
    assert all(abs(step.var().item() - 1) < 0.05 for step in path)
    assert interpolate(a, b, 9, "lerp")[4].var() < 0.6  # plain lerp shrinks it to 1/2 at the middle


def test_slerp_measures_the_angle_between_directions_whatever_the_lengths():
    a, b = torch.tensor([3.0, 0.0]), torch.tensor([3.0, 3.0])  # 45 degrees apart, lengths 3 and 4.24
    middle = slerp(a, b, torch.tensor([0.5]))[0]
    omega = math.pi / 4
    expected = (math.sin(omega / 2) * a + math.sin(omega / 2) * b) / math.sin(omega)
    torch.testing.assert_close(middle, expected)


def test_the_manifold_animation_walks_the_variance_preserving_path(monkeypatch):
    from tests.helpers import tiny_config
    from vaekit.explore.sampling import manifold_frames
    from vaekit.models import create_model

    model = create_model(tiny_config()).eval()
    decoded = []
    real = model.to_image
    monkeypatch.setattr(model, "to_image", lambda z: decoded.append(z) or real(z))
    frames = manifold_frames(model, 2, 3, steps=5, seed=4)
    assert len(frames) == 5
    generator = torch.Generator().manual_seed(4)
    a, b = model.prior_sample(6, generator=generator), model.prior_sample(6, generator=generator)
    torch.testing.assert_close(torch.stack(decoded), variance_preserving(a, b, 5))
    torch.testing.assert_close(decoded[2], (a * 2 + b * 2) / math.sqrt(8))


@pytest.mark.parametrize("scale", [2.0, 1.0, -1.0])
def test_slerp_between_parallel_or_opposite_latents_gives_finite_frames(scale):
    a = torch.tensor([1.0, 2.0, -0.5])
    frames = slerp(a, scale * a, torch.linspace(0, 1, 5))
    assert torch.isfinite(frames).all()
    torch.testing.assert_close(frames[0], a)
    torch.testing.assert_close(frames[-1], scale * a, atol=1e-3, rtol=1e-3)
