import re

import pytest

from vaekit.config import Config, ConfigError, available_presets, load_preset


def test_yaml_round_trip(tmp_path):
    config = Config().with_overrides(["train.lr=3e-4", "model.channels=[8, 16]", "train.max_steps=12"])
    config.to_yaml(tmp_path / "c.yaml")
    assert Config.from_yaml(tmp_path / "c.yaml") == config


def test_overrides_parse_yaml_values():
    config = Config().with_overrides(["train.lr=1e-3", "train.precision=bf16", "data.flip=true", "train.max_steps=5"])
    assert config.train.lr == 1e-3 and config.train.precision == "bf16"
    assert config.data.flip is True and config.train.max_steps == 5


def test_unknown_key_names_it_and_suggests():
    with pytest.raises(ConfigError, match=r"'train.lrr'.*did you mean 'train.lr'"):
        Config().with_overrides(["train.lrr=1"])


def test_unknown_section_is_an_error():
    with pytest.raises(ConfigError, match=r"unknown config key 'trian' \(did you mean 'train'\?\)"):
        Config().with_overrides(["trian.lr=1"])


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match=r"train\.batch_size: expected an integer"):
        Config().with_overrides(["train.batch_size=big"])


def test_unknown_key_in_yaml_file_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  latent_size: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*'model.latent_size'"):
        Config.from_yaml(path)


def test_override_without_equals_sign():
    with pytest.raises(ConfigError, match="key=value"):
        Config().with_overrides(["train.lr"])


@pytest.mark.parametrize("name", ["conv-mnist", "conv-celeba64", "anime-l1", "shapes-demo"])
def test_presets_load(name):
    assert name in available_presets()
    assert isinstance(load_preset(name), Config)


def test_preset_specs_from_the_issue():
    mnist = load_preset("conv-mnist")
    assert (mnist.model.channels, mnist.model.kernel_size, mnist.model.latent_dim) == ([16, 32, 64], 3, 16)
    assert mnist.likelihood.name == "bernoulli"
    celeba = load_preset("conv-celeba64")
    assert (celeba.model.kernel_size, celeba.model.channels[0], celeba.model.channels[-1]) == (5, 64, 512)
    assert celeba.model.latent_dim == 128 and celeba.likelihood.name == "gaussian"
    anime = load_preset("anime-l1")
    assert anime.likelihood.name == "laplace" and anime.data.image_size == 64


def test_unknown_preset_suggests():
    with pytest.raises(ConfigError, match="did you mean 'conv-mnist'"):
        load_preset("conv-mnst")


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("600", 600.0), (600, 600.0), ("90s", 90.0), ("10m", 600.0), ("1h30m", 5400.0), ("2.5h", 9000.0)],
)
def test_a_time_budget_is_seconds_or_a_duration_string(written, seconds):
    assert Config().with_overrides({"train.max_time": written}).train.max_time == seconds


@pytest.mark.parametrize("written", ["10 minutes", "m", "1m30h", "-5", "0s"])
def test_a_time_budget_that_is_no_positive_duration_names_the_key(written):
    with pytest.raises(ConfigError, match=r"train\.max_time"):
        Config().with_overrides({"train.max_time": written})


def test_a_config_is_frozen_and_changes_only_by_making_a_new_one():
    import dataclasses

    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.train.lr = 1.0  # type: ignore[misc]
    changed = config.with_overrides({"train.lr": 0.5})
    assert changed.train.lr == 0.5 and config.train.lr == Config().train.lr


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ({"train.betas": [0.9]}, "train.betas: give two numbers"),
        ({"train.betas": [0.9, 0.99, 0.999]}, "train.betas: give two numbers"),
        ({"data.channels": True}, "data.channels: True is not one of 1, 3"),  # a bool is not the number 1
        ({"train.epochs": 2.5}, "train.epochs: expected an integer, got 2.5"),  # never truncated to 2
        ({"data.image_size": 4097}, "data.image_size: must be at most 4096"),
    ],
)
def test_values_that_are_not_quite_right_are_refused(setting, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        Config().with_overrides(setting)


def test_a_value_at_its_upper_bound_is_accepted():
    assert Config().with_overrides({"data.image_size": 4096, "data.val_fraction": 0.9}).data.image_size == 4096
    assert Config().with_overrides({"train.epochs": 2.0}).train.epochs == 2  # a whole float is that integer


def test_dotted_items_flatten_nested_dicts_into_the_keys_overrides_take():
    from vaekit.schema import dotted_items

    assert dotted_items({"a": {"b": 1, "c": {"d": [2]}}, "e": {}, "f": None}) == {
        "a.b": 1, "a.c.d": [2], "e": {}, "f": None
    }  # fmt: skip
    flat = dotted_items(Config().to_dict())
    assert (
        Config().with_overrides({key: value for key, value in flat.items()}) == Config()
    )  # every key is one --set takes


def test_the_documented_defaults_of_the_recovery_from_non_finite_updates():
    train = Config().train
    assert (train.on_nonfinite, train.max_skipped, train.skip_window, train.max_rollbacks) == ("auto", 5, 200, 3)


def test_a_config_file_nested_too_deeply_is_one_line_naming_it(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match=r"deep\.yaml: nested too deeply") as refused:
        Config.from_yaml(path)
    assert "\n" not in str(refused.value)
