"""The second-stage VAE sampler (Dai & Wipf): fitted on latents, drawn from, saved and loaded, and
judged against the mixture by the held-out log-density of latents."""

from __future__ import annotations

import math

import pytest
import torch

from vaekit.models.two_stage import SecondStage, TwoStageSampler


def curve(n: int, seed: int = 0) -> torch.Tensor:
    """Latents on a curve in 4-d: what a prior or one Gaussian models badly."""
    t = torch.rand(n, 1, generator=torch.Generator().manual_seed(seed)) * 6
    return torch.cat([torch.sin(t), torch.cos(t), t / 3, torch.zeros(n, 1)], 1) * 5 + 2


@pytest.fixture(scope="module")
def fitted():
    return TwoStageSampler.fit(curve(600), steps=300, max_time=30)


def test_it_learns_the_latents_better_than_its_start(fitted):
    held = curve(200, seed=1)
    untrained = TwoStageSampler.fit(curve(600), steps=0)
    assert fitted.log_prob(held).mean() > untrained.log_prob(held).mean() + 1.0


def test_its_draws_are_latents_shaped_and_near_the_data(fitted):
    draws = fitted.draw(500, generator=torch.Generator().manual_seed(0))
    assert draws.shape == (500, 4)
    assert (draws.mean(0) - curve(2000).mean(0)).abs().max() < 1.5  # standardisation undone: the data's scale


def test_the_log_density_is_a_bound_that_counts_the_standardisation():
    torch.manual_seed(0)
    network = SecondStage(2, 8)
    u = torch.randn(5, 2)
    one = TwoStageSampler(network, torch.zeros(2), torch.ones(2), {"latent_shape": [2]})
    wide = TwoStageSampler(network, torch.zeros(2), torch.full((2,), 10.0), {"latent_shape": [2]})
    same = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    expected = one.log_prob(u, generator=same[0]) - 2 * math.log(10.0)  # z = 10 u: the Jacobian
    torch.testing.assert_close(wide.log_prob(u * 10, generator=same[1]), expected)


def test_it_saves_and_loads_bit_for_bit_and_a_damaged_file_is_one_line(fitted, tmp_path):
    fitted.save(tmp_path)
    loaded = TwoStageSampler.load(tmp_path)
    draw = lambda s: s.draw(4, generator=torch.Generator().manual_seed(3))  # noqa: E731
    assert torch.equal(draw(loaded), draw(fitted)) and loaded.describe() == fitted.describe()
    path = tmp_path / "sampler-two-stage.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="not a usable second-stage sampler") as refused:
        TwoStageSampler.load(tmp_path)
    assert "\n" not in str(refused.value)


def test_the_end_of_training_keeps_the_candidate_with_the_higher_held_out_density():
    from vaekit.training.sampler_fit import _held_out_choice

    class Fixed:
        def __init__(self, value: float) -> None:
            self.value = value

        def log_prob(self, z, generator=None):
            return torch.full((len(z),), self.value)

    name, said = _held_out_choice(torch.zeros(4, 2), {"gmm": Fixed(-3.0), "two-stage": Fixed(-1.0)}, 0)
    assert name == "two-stage" and "-1.0 nats (against gmm -3.0)" in said
    assert _held_out_choice(torch.zeros(4, 2), {"gmm": Fixed(2.0), "two-stage": Fixed(-1.0)}, 0)[0] == "gmm"
    assert _held_out_choice(torch.zeros(0, 2), {"gmm": Fixed(0.0), "two-stage": Fixed(9.0)}, 0) == ("gmm", "")
