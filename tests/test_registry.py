"""One registry per component kind: a component registers itself in one call in its own file and
then appears everywhere names are listed, checked or tested (the toys of tests/components/)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import vaekit
from tests.helpers import tiny_config
from vaekit.cli import main
from vaekit.config import ConfigError
from vaekit.registry import Registry
from vaekit.training.setup import check_components
from vaekit.training.trainer import Trainer


def test_a_name_nobody_registered_is_a_config_error_with_the_nearest_name_and_the_choices():
    registry = Registry("widget", "model.widget", plugins=True, listed=False)
    registry.add("spinner", object)
    registry.add("slider", object)
    with pytest.raises(ConfigError, match=r"model\.widget: unknown widget 'spiner' \(did you mean 'spinner'\?\); "):
        registry.get("spiner")
    registry.check("package.module:Widget")  # plug-ins pass the name check (trust is asked on import)
    with pytest.raises(ConfigError, match=r"use one of spinner, slider, or package\.module:Name"):
        registry.check("knob")


def test_a_name_registered_twice_or_an_unknown_capability_is_a_programming_error():
    registry = Registry("widget", "model.widget", capabilities=("round",), listed=False)
    registry.add("spinner", object, capabilities={"round"})
    with pytest.raises(ValueError, match="registered twice"):
        registry.add("spinner", int)
    with pytest.raises(ValueError, match="unknown capabilities"):
        registry.add("slider", object, capabilities={"square"})


def test_a_class_declares_its_capabilities_once_and_the_registry_reads_them():
    from vaekit.objectives import OBJECTIVES
    from vaekit.objectives.intro import SoftIntro

    assert OBJECTIVES.get("soft-intro").capabilities == SoftIntro.capabilities


def test_the_toy_components_appear_in_the_listing(capsys):
    assert main(["components"]) == 0
    listing = capsys.readouterr().out
    for name in ("toy-linear", "toy-unit-gaussian", "toy-half-kl", "toy-brightness", "toy-checkers"):
        assert f"  {name} " in listing
    assert main(["components", "metric"]) == 0
    assert "architectures" not in capsys.readouterr().out


def test_the_toy_components_are_in_the_contract_matrix():
    from tests import test_contracts

    assert "toy-linear" in test_contracts.ARCH_SETTINGS
    assert "toy-unit-gaussian" in test_contracts.LIKELIHOOD_SETTINGS
    assert "toy-half-kl" in test_contracts.OBJECTIVE_SETTINGS
    ids = {p.id for p in test_contracts._combinations()}
    assert "toy-linear-toy-unit-gaussian-toy-half-kl" in ids


def test_a_mistyped_toy_name_gets_did_you_mean_and_exit_2(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "run"), "--set", "model.arch=toy-linaer"]) == 2
    assert "did you mean 'toy-linear'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_toys_train_and_evaluate_end_to_end(tmp_path):
    config = tiny_config(
        **{
            "model.arch": "toy-linear",
            "likelihood.name": "toy-unit-gaussian",
            "objective.name": "toy-half-kl",
            "train.max_steps": 3,
        }
    )
    run = vaekit.train(config, out=tmp_path / "run")
    report = vaekit.evaluate(run, metrics=["toy-brightness", "elbo"])
    assert set(report["metrics"]) == {"toy", "elbo"}
    assert 0 <= report["metrics"]["toy"]["reconstructed"] <= 1


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"objective.name": "soft-intro", "likelihood.name": "bernoulli"}, "likelihood.name: soft-intro compares"),
        ({"objective.name": "soft-intro", "likelihood.name": "gaussian", "train.accumulate": 2}, "train.accumulate"),
        ({"objective.adversarial.enabled": True, "train.accumulate": 2}, "second phase"),
        ({"train.gradient_checkpointing": True}, "train.gradient_checkpointing: model.arch conv"),
        ({"objective.adversarial.enabled": True}, "a PatchGAN of 3 layers needs images of at least 24 px"),
        ({"objective.equivariance.enabled": True}, "objective.equivariance: needs a spatial latent"),
        ({"objective.alignment.enabled": True}, "objective.alignment: needs a spatial latent"),
        (
            {"objective.name": "soft-intro", "likelihood.name": "gaussian", "objective.equivariance.enabled": True},
            "objective.equivariance.enabled: the equivariance term does not run with objective soft-intro",
        ),
    ],
)
def test_components_that_cannot_work_together_are_config_errors_before_any_work(tmp_path, settings, words):
    config = tiny_config(**settings)
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(".", r"\.")):
        check_components(config)
    with pytest.raises(ConfigError):
        Trainer(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before the run folder, the data or the model


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        (
            {"train.loggers": ["csv", "tensorbord"]},
            "train.loggers: unknown logger 'tensorbord' (did you mean 'tensorboard'?)",
        ),
        ({"likelihood.name": "gausian"}, "likelihood.name: unknown likelihood 'gausian' (did you mean 'gaussian'?)"),
        ({"objective.name": "softintro"}, "objective.name: unknown objective 'softintro' (did you mean 'soft-intro'?)"),
        (
            {"objective.kl.schedule": "sigmoidal"},
            "objective.kl.schedule: unknown kl schedule 'sigmoidal' (did you mean",
        ),
        ({"train.lr_schedule": "cosin"}, "train.lr_schedule: unknown learning-rate schedule 'cosin' (did you mean"),
        ({"data.crop": "centre"}, "data.crop: unknown crop 'centre' (did you mean 'center'?)"),
    ],
)
def test_a_misspelt_component_name_is_refused_when_the_config_is_built(settings, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        tiny_config(**settings)


def test_a_patchgan_too_deep_for_in_memory_images_is_refused_once_their_size_is_known(tmp_path):
    images = np.zeros((64, 16, 16), np.uint8)
    config = tiny_config(**{"objective.adversarial.enabled": True, "data.image_size": 64})
    with pytest.raises(ConfigError, match=r"needs images of at least 24 px \(data\.image_size is 16\)"):
        vaekit.train(config, data=images, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_evaluate_names_an_unknown_metric_with_did_you_mean(tmp_path):
    run = vaekit.train(tiny_config(**{"train.max_steps": 1}), out=tmp_path / "run")
    with pytest.raises(ConfigError, match=r"metrics: unknown metric 'reconstuction' \(did you mean 'reconstruction'"):
        vaekit.evaluate(run, metrics=["reconstuction"])


def test_a_toy_data_source_is_named_like_a_built_in_one_and_trains(tmp_path, capsys):
    from vaekit.data.sources import parse_spec

    assert parse_spec("toy-checkers") == ("toy-checkers", None)
    run = vaekit.train(tiny_config(**{"data.source": "toy-checkers", "train.max_steps": 2}), out=tmp_path / "run")
    assert vaekit.load(run).config.data.source == "toy-checkers"
    assert main(["components", "data"]) == 0
    listing = capsys.readouterr().out
    assert "  toy-checkers " in listing and "  celeba " in listing and "architectures" not in listing


def test_every_options_section_a_component_names_is_a_section_of_the_config():

    from vaekit.config import Config
    from vaekit.registry import kinds

    for registry in kinds():
        for entry in registry:
            if entry.options:
                node = Config()
                for part in entry.options_key.split("."):
                    node = getattr(node, part)
                assert isinstance(node, entry.options), f"{registry.kind} {entry.name}: {entry.options_key}"
    from vaekit.models import ARCHITECTURES
    from vaekit.models.style import StyleConfig

    assert ARCHITECTURES.get("style").options_key == "model.style"
    assert ARCHITECTURES.get("style").options is StyleConfig


def test_the_readmes_table_of_components_is_what_the_registries_hold():
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {key: value for key, value in os.environ.items() if key != "VAEKIT_PLUGINS"}  # vaekit's own only
    done = subprocess.run(
        [sys.executable, "-m", "vaekit", "components", "--markdown"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert done.stdout.strip() in readme, "README: paste `vaekit components --markdown` under 'Components'"
