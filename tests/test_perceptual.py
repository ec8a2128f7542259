import math

import pytest
import torch

from tests.helpers import tiny_config
from vaekit.config import LikelihoodConfig
from vaekit.features.weights import WeightsNotFound
from vaekit.likelihoods import Perceptual, PerceptualConfig, create_likelihood
from vaekit.models import create_model


def _perceptual(**options) -> Perceptual:
    torch.manual_seed(0)
    settings = {"random_weights": True, "resize": None} | options
    return create_likelihood(LikelihoodConfig(name="perceptual", sections={"perceptual": PerceptualConfig(**settings)}))


def test_zero_for_identical_images_and_grows_with_distortion():
    likelihood = _perceptual()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    logits = torch.logit(x.clamp(1e-4, 1 - 1e-4))
    assert likelihood.nll(logits, x).abs().max() < 1e-3
    small, large = (likelihood.nll(logits + s * torch.randn_like(logits), x).mean() for s in (0.1, 1.0))
    assert 0 < small < large


def test_gradients_reach_the_decoder_output_not_the_network():
    likelihood = _perceptual(layers=["relu1_1"], layer_weights=[1.0])
    params = torch.zeros(1, 3, 16, 16, requires_grad=True)
    likelihood.nll(params, torch.rand(1, 3, 16, 16)).sum().backward()
    assert params.grad is not None and params.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in likelihood.network.parameters())


def test_network_is_frozen_unsaved_and_follows_the_model():
    model = create_model(tiny_config(**{"likelihood.name": "perceptual", "likelihood.perceptual.random_weights": True}))
    likelihood = model.likelihood
    assert likelihood._network is None  # built on first use only
    likelihood.nll(torch.zeros(1, 3, 16, 16), torch.rand(1, 3, 16, 16))
    assert not any(key.startswith("likelihood") and "features" in key for key in model.state_dict())
    assert all(not p.requires_grad for p in likelihood.network.parameters())
    assert not any(p is q for p in model.parameters() for q in likelihood.network.parameters())
    model.train()
    assert not likelihood.network.training
    model.double()
    assert next(likelihood.network.parameters()).dtype == torch.float64


def test_pixel_term_is_added():
    likelihood = _perceptual(pixel="gaussian", pixel_weight=2.0)
    x = torch.rand(1, 3, 16, 16)
    logits = torch.zeros_like(x)
    pixel = create_likelihood(LikelihoodConfig(name="gaussian"))
    combined = likelihood.nll(logits, x)
    likelihood.pixel_weight = 0.0
    torch.testing.assert_close(combined, likelihood.nll(logits, x) + 2 * pixel.nll(logits, x))


def test_missing_pretrained_weights_are_an_error_not_a_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("VAEKIT_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    likelihood = _perceptual(random_weights=False)
    with pytest.raises(WeightsNotFound, match=r"vgg16-397923af\.pth"):
        likelihood.nll(torch.zeros(1, 3, 16, 16), torch.rand(1, 3, 16, 16))


def test_layer_weights_must_match_layers():
    with pytest.raises(ValueError, match="3 perceptual layers but 1 layer weights"):
        _perceptual(layer_weights=[1.0])


def test_style_model_trains_with_it_under_bf16_and_loads_without_vgg_weights(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from vaekit.api import load, train

    config = tiny_config(
        **{
            "model.arch": "style",
            "model.style.channel_base": 128,
            "model.style.max_channels": 8,
            "model.style.mapping_layers": 1,
            "model.style.style_dim": 8,
            "likelihood.name": "perceptual",
            "likelihood.perceptual.random_weights": True,
            "likelihood.perceptual.resize": None,
            "train.precision": "bf16",
            "train.max_steps": 2,
        }
    )
    run = train(config, out=tmp_path / "run")
    saved = load_file(str(run / "model" / "model.safetensors"))
    assert not any("features" in key for key in saved)  # the VGG is not part of the model
    monkeypatch.setenv("VAEKIT_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-weights"))
    config_file = run / "model" / "config.yaml"
    config_file.write_text(config_file.read_text().replace("random_weights: true", "random_weights: false"))
    assert load(run).sample(2).shape == (2, 3, 16, 16)  # sampling never needs the VGG weights


def test_lpips_as_a_perceptual_term_is_weight_times_pixels_times_the_distance_plus_l1():
    from vaekit.features.lpips import LPIPS

    likelihood = create_likelihood(
        LikelihoodConfig(
            name="perceptual",
            output="signed",
            sections={"perceptual": PerceptualConfig(
                network="lpips-alex", layers=["lpips"], layer_weights=[0.7], resize=None,
                random_weights=True, pixel="laplace",
            )},
        )
    )  # fmt: skip
    assert isinstance(likelihood.network, LPIPS)
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    params = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    distance = likelihood.network((params + 1) / 2, (target + 1) / 2)
    l1 = ((target - params).abs() + math.log(2)).flatten(1).sum(1)  # Laplace with b = 1
    torch.testing.assert_close(likelihood.nll(params, target), 0.7 * 3 * 32 * 32 * distance + l1)


def test_a_train_classifier_network_serves_as_the_perceptual_network(tmp_path):
    from vaekit.features.classifier import SmallClassifier, save_classifier

    torch.manual_seed(0)
    weights = save_classifier(SmallClassifier(3, 40, 16), tmp_path / "faces.safetensors")
    likelihood = _perceptual(
        network="classifier",
        weights=str(weights),
        random_weights=False,
        imagenet_normalize=False,
        layers=["body.1", "body.4", "body.9"],
        layer_weights=[1.0, 1.0, 1.0],
    )
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    logits = torch.logit(x.clamp(1e-4, 1 - 1e-4))
    assert likelihood.nll(logits, x).abs().max() < 1e-3
    assert (likelihood.nll(logits + torch.randn_like(logits), x) > 0).all()
    assert likelihood.network.network.num_classes == 40


def test_the_classifier_network_without_its_weights_file_is_an_error():
    likelihood = _perceptual(network="classifier", random_weights=False, layers=["body.1"], layer_weights=[1.0])
    with pytest.raises(ValueError, match="train-classifier"):
        likelihood.nll(torch.zeros(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_imagenet_normalisation_subtracts_the_mean_and_divides_by_the_std():
    likelihood = _perceptual(imagenet_normalize=True)  # one network: its random weights are drawn once
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    normalised = likelihood.features(x)
    likelihood.imagenet_normalize = False
    expected = likelihood.features((x - mean) / std)
    for name, value in normalised.items():
        torch.testing.assert_close(value, expected[name])
