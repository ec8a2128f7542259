"""The whole-life contract of the components that a trained run serves rather than trains: every
sampler is fitted, saved, attached and drawn from; every metric reports finite numbers on a run of a
latent kind that has what it needs (and is refused in one line on one that has not). Apart from
``test_whole_life.py`` so that they spread over the test workers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import vaekit
from tests.test_whole_life import LIFE, _finite, _leaves
from vaekit.config import ConfigError
from vaekit.evaluation.report import METRICS
from vaekit.models import LATENTS
from vaekit.models.samplers import SAMPLERS


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_every_sampler_is_fitted_saved_attached_and_drawn_from(name, tmp_path):
    entry = SAMPLERS.get(name)
    needs = entry.declares.get("needs", ())
    holder = next(e for e in LATENTS if all(e.has(need) for need in needs))  # a latent kind it samples
    settings = {**LIFE, "model.latent": holder.name, **holder.tiny}
    run = vaekit.train(out=tmp_path / "run", overrides=[f"{k}={json.dumps(v)}" for k, v in settings.items()])
    if entry.factory is not None:
        fitted = vaekit.fit_sampler(run, sampler=name, **entry.tiny)  # the tiny fit's options
        assert "\n" not in fitted.describe()
        others = [e for e in LATENTS if not all(e.has(need) for need in needs)]
        if others:  # a latent kind it cannot sample is refused in one line
            other = {**LIFE, "model.latent": others[0].name, **others[0].tiny}
            wrong = vaekit.train(out=tmp_path / "other", overrides=[f"{k}={json.dumps(v)}" for k, v in other.items()])
            with pytest.raises(ConfigError, match=f"sampler {name} needs a latent kind"):
                vaekit.fit_sampler(wrong, sampler=name, **entry.tiny)
    first, second = (vaekit.sample(run, 3, seed=1, sampler=name) for _ in range(2))
    assert first.shape[0] == 3 and torch.isfinite(first).all()
    assert torch.equal(first, second)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    overrides = [f"{key}={json.dumps(value)}" for key, value in LIFE.items()]
    return vaekit.train(out=tmp_path_factory.mktemp("reference") / "run", overrides=overrides)


@pytest.mark.parametrize("name", METRICS.names())
def test_every_metric_reports_finite_numbers_or_names_the_weights_it_needs(name, reference_run, tmp_path):
    from vaekit.features.classifier import SmallClassifier, save_classifier
    from vaekit.features.weights import WeightsNotFound

    features = save_classifier(SmallClassifier(3, 4, 8), tmp_path / "features.safetensors")  # FID's features
    settings = {"max_images": 8, "iwae_k": 2, "n_samples": 16, "kid_subsets": 2, "kid_subset_size": 8}
    needs = METRICS.get(name).declares.get("needs", ())
    run = reference_run
    if not all(LATENTS.get("gaussian").has(need) for need in needs):  # refused in one line, then measured
        with pytest.raises(ConfigError) as refused:  # on a run of a latent kind that has what it needs
            vaekit.evaluate(reference_run, metrics=[name], **settings)
        assert "\n" not in str(refused.value)
        holder = next(entry for entry in LATENTS if all(entry.has(need) for need in needs))
        overrides = {**LIFE, "model.latent": holder.name, **holder.tiny}
        run = vaekit.train(out=tmp_path / "holder", overrides=[f"{k}={json.dumps(v)}" for k, v in overrides.items()])
    try:
        report = vaekit.evaluate(run, metrics=[name], features=str(features), **settings)
    except WeightsNotFound as missing:  # pretrained weights (LPIPS' VGG) cannot be downloaded here
        assert "\n" not in str(missing) and "Put " in str(missing)
        return
    assert report["metrics"] and all(_finite(value) for value in _leaves(report["metrics"]))
