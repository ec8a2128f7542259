import json

import numpy as np

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
