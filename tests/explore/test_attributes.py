import numpy as np
import pytest
import torch

from tests.helpers import tiny_config
from vaekit.data.dataset import ImageDataset
from vaekit.explore.attributes import (
    AttributeVectors,
    compute_attribute_vectors,
    edit_images,
    latent_arithmetic,
    parse_strengths,
    parse_sweep,
    sweep_images,
)
from vaekit.models import create_model


def _labelled(n=40):
    """Bright images have attribute 'Bright'; 'Square' is unrelated and 'Never' is never true."""
    rng = np.random.default_rng(0)
    bright = rng.random(n) < 0.5
    images = np.where(bright[:, None, None, None], 200, 50).astype(np.uint8).repeat(3, 1).repeat(8, 2).repeat(8, 3)
    labels = np.stack([bright, rng.random(n) < 0.5, np.zeros(n, bool)], 1).astype(np.int8)
    return ImageDataset(images=images, labels=labels, label_names=["Bright", "Square", "Never"])


def test_vectors_are_mean_differences_of_posterior_means(monkeypatch):
    model = create_model(tiny_config(**{"data.image_size": 8, "model.channels": [4]}))
    monkeypatch.setattr(model, "embed", lambda images: images.mean((2, 3)))  # mu = per-channel brightness
    vectors = compute_attribute_vectors(model, _labelled())
    torch.testing.assert_close(vectors["Bright"], torch.full((3,), 150 / 255))
    assert "Never" not in vectors.vectors and vectors.counts["Never"] == {"with": 0, "without": 40}
    assert vectors.counts["Bright"]["with"] + vectors.counts["Bright"]["without"] == 40


def test_vectors_have_the_spatial_latent_shape_and_round_trip(tmp_path):
    config = tiny_config(**{"model.arch": "spatial", "data.image_size": 8, "model.spatial.residual_blocks": 1,
                            "model.spatial.latent_channels": 5})  # fmt: skip
    model = create_model(config).eval()
    vectors = compute_attribute_vectors(model, _labelled(), ["Bright"])
    assert vectors["Bright"].shape == model.latent_shape == (5, 2, 2)
    vectors.save(tmp_path)
    loaded = AttributeVectors.load(tmp_path)
    torch.testing.assert_close(loaded["Bright"], vectors["Bright"])
    assert loaded.counts == vectors.counts


def test_edit_with_strength_zero_is_the_reconstruction():
    model = create_model(tiny_config(**{"data.image_size": 8, "model.channels": [4]})).eval()
    vectors = compute_attribute_vectors(model, _labelled())
    images = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(edit_images(model, images, vectors, {"Bright": 0.0}), model.reconstruct(images))
    assert not torch.allclose(edit_images(model, images, vectors, {"Bright": 3.0}), model.reconstruct(images))
    strip = sweep_images(model, images[0], vectors, "Bright", [-1.0, 0.0, 1.0])
    torch.testing.assert_close(strip[1], model.reconstruct(images[:1])[0])


def test_arithmetic_of_a_b_b_is_a():
    model = create_model(tiny_config(**{"data.image_size": 8, "model.channels": [4]})).eval()
    a, b = torch.rand(3, 8, 8), torch.rand(3, 8, 8)
    torch.testing.assert_close(latent_arithmetic(model, a, b, b), model.reconstruct(a[None]))


def test_unknown_and_missing_names_are_clear_errors():
    model = create_model(tiny_config(**{"data.image_size": 8, "model.channels": [4]}))
    with pytest.raises(ValueError, match=r"unknown attribute\(s\) \['Smiling'\]"):
        compute_attribute_vectors(model, _labelled(), ["Smiling"])
    vectors = compute_attribute_vectors(model, _labelled(), ["Bright"])
    with pytest.raises(ValueError, match="no attribute vector 'Square'; available: Bright"):
        vectors["Square"]
    with pytest.raises(ValueError, match="no binary attribute labels"):
        compute_attribute_vectors(model, ImageDataset(images=_labelled().images))


def test_strength_and_sweep_parsing():
    assert parse_strengths(["Smiling=1.5", "Male=-1"]) == {"Smiling": 1.5, "Male": -1.0}
    assert parse_sweep("-2:2:5") == [-2.0, -1.0, 0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="NAME=STRENGTH"):
        parse_strengths(["Smiling"])
    with pytest.raises(ValueError, match="START:STOP:COUNT"):
        parse_sweep("1:2")


def test_latent_arithmetic_is_a_minus_b_plus_c():
    from vaekit.config import LikelihoodConfig
    from vaekit.likelihoods import create_likelihood
    from vaekit.models import ModulesVAE

    class Flat(torch.nn.Module):
        def forward(self, x):
            return x.flatten(1), torch.zeros_like(x.flatten(1))

    likelihood = create_likelihood(LikelihoodConfig("gaussian", output="identity"))
    identity = ModulesVAE(Flat(), torch.nn.Unflatten(1, (1, 2, 2)), (4,), likelihood, (1, 2, 2))
    identity.register_parameter("unused", torch.nn.Parameter(torch.zeros(1)))
    a, b, c = (torch.full((1, 2, 2), v) for v in (0.5, 0.2, 0.1))
    result = latent_arithmetic(identity, a, b, c)
    torch.testing.assert_close(result[-1], torch.full((1, 2, 2), 0.4))
