import json

import numpy as np
import pytest
import torch

from tests.helpers import tiny_config
from vaekit.data.dataset import ImageDataset
from vaekit.evaluation.report import EvaluationSettings, evaluate, write_report
from vaekit.features.classifier import SmallClassifier, save_classifier
from vaekit.models import create_model


def test_every_setting_and_metric_is_in_the_report(tmp_path):
    model = create_model(tiny_config())
    images = np.random.default_rng(0).integers(0, 256, (24, 3, 16, 16), dtype=np.uint8)
    classifier = save_classifier(SmallClassifier(3, 4, 16), tmp_path / "features.safetensors")
    settings = EvaluationSettings(
        metrics=["elbo", "reconstruction", "fid", "kid", "nll", "latents", "speed"],
        iwae_k=3,
        n_samples=20,
        features=str(classifier),
        kid_subsets=3,
        kid_subset_size=10,
    )
    report = evaluate(model, ImageDataset(images=images, source="synthetic"), settings, run="tiny")
    json_path, markdown = write_report(report, tmp_path / "metrics.json")
    saved = json.loads(json_path.read_text())
    for key, value in vars(settings).items():
        assert saved["settings"][key] == value, key
    assert saved["settings"]["n_real"] == 24 and saved["settings"]["n_fake"] == 20
    assert "classifier" in saved["settings"]["feature_network"]
    metrics = saved["metrics"]
    assert set(metrics) == {"elbo", "reconstruction", "generation", "nll", "latents", "speed"}
    assert metrics["reconstruction"]["ms_ssim"] is None  # 16 px is too small for 5 scales
    assert metrics["nll"]["k"] == 3 and metrics["generation"]["fid"] >= 0
    assert "| generation.fid |" in markdown.read_text() and "Settings:" in markdown.read_text()


def test_rfid_compares_reconstructions_with_their_originals_in_the_same_features(tmp_path, monkeypatch):
    from vaekit.evaluation.generation import extract_features, frechet_distance

    model = create_model(tiny_config()).eval()
    images = np.random.default_rng(1).integers(0, 256, (30, 3, 16, 16), dtype=np.uint8)
    classifier = save_classifier(SmallClassifier(3, 4, 16), tmp_path / "features.safetensors")
    settings = EvaluationSettings(metrics=["rfid"], features=str(classifier))
    report = evaluate(model, ImageDataset(images=images, source="synthetic"), settings)
    from vaekit.evaluation.report import _feature_network

    network, _ = _feature_network(settings)
    batch = torch.from_numpy(images).float() / 255
    expected = frechet_distance(
        extract_features(network, [batch]), extract_features(network, [model.reconstruct(batch)])
    )
    assert report["metrics"]["generation"]["rfid"] == pytest.approx(expected, rel=1e-6)
    monkeypatch.setattr(type(model), "reconstruct", lambda self, x: x)  # a perfect autoencoder
    perfect = evaluate(model, ImageDataset(images=images, source="synthetic"), settings)
    assert abs(perfect["metrics"]["generation"]["rfid"]) < 1e-6


def test_latent_scaling_makes_the_latents_unit_variance():
    from vaekit.evaluation.likelihood import latent_scaling
    from vaekit.models.blocks import LatentHead

    torch.manual_seed(0)  # the model's weights are the test's own, whatever ran before it
    model = create_model(tiny_config()).eval()
    head = next(module for module in model.modules() if isinstance(module, LatentHead))
    with torch.no_grad():
        head.linear.bias[: model.latent_shape[0]] += 2.0  # latents centred on 2: the shift matters
    images = np.random.default_rng(2).integers(0, 256, (64, 3, 16, 16), dtype=np.uint8)
    scaling = latent_scaling(model, images)
    assert scaling["shift_factor"] > 1.5
    batch = torch.from_numpy(images).float() / 255
    with torch.no_grad():
        posterior = model.encode(model.likelihood.prepare(batch))
    z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=torch.Generator().manual_seed(0))
    assert scaling["shift_factor"] == pytest.approx(z.mean().item(), rel=1e-4, abs=1e-6)
    assert scaling["scaling_factor"] == pytest.approx(1 / z.std(unbiased=False).item(), rel=1e-4)


def test_the_evaluation_seed_reaches_the_iwae_bound_and_the_generated_samples(tmp_path):
    torch.manual_seed(0)
    model = create_model(tiny_config())
    images = np.random.default_rng(0).integers(0, 256, (24, 3, 16, 16), dtype=np.uint8)
    classifier = save_classifier(SmallClassifier(3, 4, 16), tmp_path / "features.safetensors")
    held_out = ImageDataset(images=images, source="synthetic")

    def scores(seed):
        settings = EvaluationSettings(
            metrics=["nll", "fid"], iwae_k=3, n_samples=20, features=str(classifier), seed=seed
        )
        metrics = evaluate(model, held_out, settings)["metrics"]
        return metrics["nll"]["iwae_nll"], metrics["generation"]["fid"]

    first, again, other = scores(0), scores(0), scores(1)
    assert first == again
    assert first[0] != other[0] and first[1] != other[1]


@pytest.mark.parametrize(
    ("value", "shown"),
    [(14450.31, "14,450.3"), (4.28571, "4.2857"), (0.0, "0.0000"), (-0.00002, "-2.000e-05"), (float("nan"), "nan")],
)
def test_headline_numbers_are_printed_in_fixed_notation(value, shown):
    from vaekit.evaluation.report import fixed

    assert fixed(value) == shown
