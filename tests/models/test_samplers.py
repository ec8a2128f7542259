"""Ex-post latent samplers: a Gaussian mixture fitted on posterior means draws where data was encoded."""

from __future__ import annotations

import pytest
import torch

from vaekit.models.samplers import FILE, GaussianMixture, fit_gmm, prior_hole

pytest.importorskip("sklearn")


def two_clusters(n: int = 400, dim: int = 3, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[3.0] * dim, [-3.0] * dim])
    return centres[torch.arange(n) % 2] + 0.2 * torch.randn(n, dim, generator=generator)


def test_bic_finds_the_clusters_and_draws_land_in_them():
    mixture = fit_gmm(two_clusters())
    assert len(mixture.weights) == 2 and mixture.full
    draws = mixture.draw(1000, generator=torch.Generator().manual_seed(1))
    assert draws.shape == (1000, 3)
    distance = torch.cdist(draws, torch.tensor([[3.0] * 3, [-3.0] * 3])).min(1).values
    assert distance.max() < 2.0  # no draw between the clusters, where the prior puts most of its mass
    assert 0.4 < (draws[:, 0] > 0).float().mean() < 0.6


def test_draws_follow_the_seed_and_temperature_zero_gives_component_means():
    mixture = fit_gmm(two_clusters(), components=2)
    first = mixture.draw(8, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, mixture.draw(8, generator=torch.Generator().manual_seed(3)))
    means = {tuple(row) for row in mixture.means.float().round(decimals=4).tolist()}
    at_zero = mixture.draw(8, temperature=0.0, generator=torch.Generator().manual_seed(3)).round(decimals=4)
    assert {tuple(row) for row in at_zero.tolist()} <= means


def test_the_density_is_a_mixture_of_the_fitted_gaussians():
    mixture = fit_gmm(two_clusters(dim=2), components=2)
    z = torch.tensor([[3.0, 3.0], [0.0, 0.0]])
    expected = torch.logsumexp(
        torch.stack([
            w.log() + torch.distributions.MultivariateNormal(m, scale_tril=s).log_prob(z.double())
            for w, m, s in zip(mixture.weights, mixture.means, mixture.scale_tril, strict=True)
        ]),
        0,
    )  # fmt: skip
    torch.testing.assert_close(mixture.log_prob(z), expected)
    assert mixture.log_prob(z)[0] > mixture.log_prob(z)[1] + 50  # the origin is a hole


def test_wide_latents_get_diagonal_components_and_the_shape_is_kept(tmp_path):
    latents = torch.randn(200, 2, 8, 8)  # 128 dimensions: diagonal covariances
    mixture = fit_gmm(latents, components=1)
    assert not mixture.full and mixture.draw(3).shape == (3, 2, 8, 8)
    loaded = GaussianMixture.load(mixture.save(tmp_path).parent)
    assert loaded.latent_shape == (2, 8, 8) and torch.equal(loaded.means, mixture.means)
    assert (tmp_path / FILE.format(name="gmm")).read_bytes()[:8] != b"\x80\x04\x95"  # safetensors, no pickle


def test_prior_draws_fall_in_the_hole_between_clusters_and_not_among_standard_normal_data():
    clusters = two_clusters(1000)
    prior = torch.randn(500, 3, generator=torch.Generator().manual_seed(0))
    holed = prior_hole(prior, clusters)
    assert holed["nearest_distance_ratio"] > 5 and holed["draws_beyond_data"] > 0.8
    mixture_draws = fit_gmm(clusters).draw(500, generator=torch.Generator().manual_seed(1))
    assert prior_hole(mixture_draws, clusters)["nearest_distance_ratio"] < 1.5  # the fitted sampler fills no hole
    normal = torch.randn(1000, 3, generator=torch.Generator().manual_seed(1))
    none = prior_hole(torch.randn(500, 3, generator=torch.Generator().manual_seed(2)), normal)
    assert 0.7 < none["nearest_distance_ratio"] < 1.4 and none["draws_beyond_data"] < 0.05


def test_a_component_count_beyond_the_points_is_refused():
    with pytest.raises(ValueError, match=r"1\.\.5 components for 5 latents"):
        fit_gmm(torch.randn(5, 2), components=6)


def test_a_damaged_sampler_file_is_refused_before_it_is_drawn_from(tmp_path):
    from safetensors.torch import save_file

    mixture = fit_gmm(two_clusters(), components=2)
    path = mixture.save(tmp_path)
    for name, value in (
        ("weights", torch.tensor([1.0, 1.0, 1.0])),
        ("scale_tril", torch.full((2, 3, 3), float("nan"))),
    ):
        tensors = {"weights": mixture.weights, "means": mixture.means, "scale_tril": mixture.scale_tril, name: value}
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(path),
                  metadata={"vaekit_sampler": '{"latent_shape": [3]}'})  # fmt: skip
        with pytest.raises(ValueError, match="not a usable Gaussian-mixture sampler"):
            GaussianMixture.load(tmp_path)


@pytest.mark.parametrize("damage", ["truncated", "pickled", "huge header", "no weights", "bad metadata", "deep"])
def test_a_sampler_file_damaged_in_any_way_is_one_line_naming_it(tmp_path, damage):
    import json
    import pickle
    import struct

    from safetensors.torch import save_file

    mixture = fit_gmm(two_clusters(), components=2)
    path = mixture.save(tmp_path)
    tensors = {"weights": mixture.weights, "means": mixture.means, "scale_tril": mixture.scale_tril}
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:-50])
    elif damage == "pickled":
        path.write_bytes(pickle.dumps(tensors))
    elif damage == "huge header":
        path.write_bytes(struct.pack("<Q", 1 << 60) + b"{}")
    elif damage == "no weights":
        save_file({k: v.contiguous() for k, v in tensors.items() if k != "weights"}, str(path))
    else:
        text = "{not json" if damage == "bad metadata" else "[" * 100_000 + "]" * 100_000
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata={"vaekit_sampler": text})
    with pytest.raises(ValueError) as refused:
        GaussianMixture.load(tmp_path)
    message = str(refused.value)
    assert "\n" not in message and str(path) in message and "not a usable Gaussian-mixture sampler" in message
    json.dumps(message)  # a plain string
