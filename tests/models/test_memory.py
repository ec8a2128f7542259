"""The training-memory estimate: built on the meta device, held against the budget, refused in one
line naming what sets it, before any weight, image or run file exists."""

from __future__ import annotations

import time

import pytest

import vaekit
from tests.helpers import tiny_config
from vaekit.config import ConfigError, load_preset
from vaekit.models import create_model
from vaekit.models.memory import BYTES_PER_PARAMETER, estimate, require_trainable

HUGE = {"data.image_size": 64, "model.latent_dim": 4, "model.channels": [8192] * 6}


def test_the_estimate_counts_exactly_the_parameters_the_model_has():
    config = tiny_config()
    need = estimate(config)
    assert need.parameters == sum(p.numel() for p in create_model(config).parameters())
    assert need.parameter_bytes == BYTES_PER_PARAMETER * need.parameters
    assert need.activations and need.batch == config.train.batch_size


def test_activations_grow_with_the_batch_and_the_pixels():
    small = estimate(tiny_config())
    twice = estimate(tiny_config(**{"train.batch_size": 64}))
    larger = estimate(tiny_config(**{"data.image_size": 32}))
    assert twice.activations == 2 * small.activations
    assert larger.activations == pytest.approx(4 * small.activations, rel=0.35)
    micro = estimate(tiny_config(**{"train.batch_size": 64, "train.accumulate": 2}))
    assert micro.activations == small.activations  # a micro-batch is what is held at once


def test_widths_whose_product_would_not_fit_are_refused_in_well_under_a_second(monkeypatch):
    monkeypatch.delenv("VAEKIT_MAX_REQUEST_BYTES", raising=False)
    estimate(tiny_config())  # the components are found (imports) before the clock starts
    started = time.perf_counter()
    with pytest.raises(ConfigError) as refused:
        require_trainable(tiny_config(**HUGE))
    assert time.perf_counter() - started < 1.0
    message = str(refused.value)
    assert "\n" not in message and "G parameters" in message and "model.channels" in message


def test_the_budget_variable_sets_the_limit_at_both_ends(monkeypatch):
    need = estimate(tiny_config()).total
    monkeypatch.setenv("VAEKIT_MAX_REQUEST_BYTES", str(need))
    assert require_trainable(tiny_config()).total == need
    monkeypatch.setenv("VAEKIT_MAX_REQUEST_BYTES", str(need - 1))
    with pytest.raises(ConfigError, match="VAEKIT_MAX_REQUEST_BYTES"):
        require_trainable(tiny_config())


def test_a_batch_too_large_for_memory_names_the_batch_and_the_image_size(monkeypatch):
    monkeypatch.setenv("VAEKIT_MAX_REQUEST_BYTES", "4MiB")
    with pytest.raises(ConfigError, match=r"lower train\.batch_size"):
        require_trainable(tiny_config(**{"train.batch_size": 4096, "model.channels": [4, 4]}))


@pytest.mark.parametrize("value", ["abc", "-1", "0", "nan", "inf", "8e9", "8 GB", "1.5GiB"])
def test_a_malformed_budget_is_one_line_not_the_default(value, monkeypatch):
    monkeypatch.setenv("VAEKIT_MAX_REQUEST_BYTES", value)
    with pytest.raises(ConfigError, match="is not a size in bytes"):
        require_trainable(tiny_config())


def test_every_preset_fits_a_machine_of_24_gib(monkeypatch):
    monkeypatch.setenv("VAEKIT_MAX_REQUEST_BYTES", "24GiB")
    for name in vaekit.available_presets():
        require_trainable(load_preset(name))


def test_an_oversize_model_is_refused_before_the_run_folder_or_the_data(tmp_path, monkeypatch):
    monkeypatch.delenv("VAEKIT_MAX_REQUEST_BYTES", raising=False)
    overrides = [f"{key}={value}" for key, value in HUGE.items()]
    with pytest.raises(ConfigError, match="G parameters"):
        vaekit.train(data=str(tmp_path / "nowhere"), out=tmp_path / "run", overrides=overrides)
    assert not (tmp_path / "run").exists()
