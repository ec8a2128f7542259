"""Without a preset, vaekit chooses from the data, says what and why, records it, and keeps what the user set."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import vaekit
from vaekit import defaults
from vaekit.config import Config
from vaekit.data.dataset import ImageDataset
from vaekit.defaults import (
    Choices,
    choose_from_data,
    choose_image_size,
    explicit_keys,
    free_keys,
    is_near_binary,
    typical_image_size,
)

QUICK = ["train.max_steps=2", "train.batch_size=8", "train.threads=1", "train.grid_size=4", "train.fit_sampler=false"]


def photos(folder, n=24, size=(48, 40)):
    """Smooth colour pictures: gradients and blobs, nothing like binary digits."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    for i in range(n):
        colour = rng.uniform(40, 220, 3)
        picture = colour[None, None] * (0.6 + 0.4 * np.sin(x / (5 + i))[..., None] * np.cos(y / 7)[..., None])
        Image.fromarray(picture.clip(0, 255).astype(np.uint8)).save(folder / f"p{i}.png")
    return folder


def digits(n=64, size=28):
    images = np.zeros((n, 1, size, size), np.uint8)
    for i in range(n):
        images[i, 0, 4 + i % 10 : 20, 10:14] = 255
    return images


def test_natural_photos_get_a_continuous_likelihood_said_and_recorded(tmp_path, capsys):
    run = vaekit.train(data=str(photos(tmp_path / "photos")), out=tmp_path / "run", overrides=QUICK)
    printed = capsys.readouterr().out
    assert "no preset: vaekit chose from the data" in printed and "likelihood.name = laplace" in printed
    config_text = (run / "config.yaml").read_text()
    assert config_text.startswith("# no preset") and "# likelihood.name = laplace" in config_text
    config = Config.from_yaml(run / "config.yaml")  # the comments do not disturb the config itself
    assert config.likelihood.name == "laplace" and config.likelihood.learn_scale
    vaekit.train(resume=run, overrides=["train.max_steps=3"])
    assert (run / "config.yaml").read_text().startswith(config_text.split("data:")[0])  # the reasons survive
    assert config.data.image_size == 40  # typical short side 40 px, a multiple of 4: kept
    assert config.model.channels == [32, 64, 128] and config.model.latent_dim == 128  # colour, over 32 px


def test_near_binary_digits_still_get_bernoulli():
    assert is_near_binary(digits())
    config, choices = Config(), Choices()
    config = choose_from_data(config, ImageDataset(digits()), free_keys(set()), choices)
    assert config.likelihood.name == "bernoulli" and config.likelihood.binarize == "dynamic"
    assert config.model.latent_dim == 16 and any("near-binary" in line for line in choices.lines)
    assert config.model.channels == [32, 64, 128]  # 28 -> 14 -> 7 -> 4


def test_explicit_settings_are_kept(tmp_path):
    overrides = [*QUICK, "likelihood.name=gaussian", "model.channels=[8,16]", "data.image_size=16"]
    run = vaekit.train(data=str(photos(tmp_path / "photos")), out=tmp_path / "run", overrides=overrides)
    config = vaekit.load(run).config
    assert config.likelihood.name == "gaussian" and config.model.channels == [8, 16] and config.data.image_size == 16
    assert config.model.latent_dim == 64  # not set: still chosen


def test_a_preset_is_used_as_it_is(tmp_path):
    run = vaekit.train(preset="shapes-demo", out=tmp_path / "run", overrides=[*QUICK, "data.num_images=256"])
    assert not (run / "config.yaml").read_text().startswith("#")


@pytest.mark.parametrize(
    ("overrides", "chosen"),
    [([], True), (["likelihood.name=gaussian"], False), (["likelihood={name: gaussian}"], False)],
)
def test_which_keys_count_as_set(overrides, chosen):
    assert ("likelihood.name" in free_keys(explicit_keys(overrides, False))) == chosen


def test_the_budget_grows_with_the_dataset_within_bounds():
    small, large = Config(), Config()
    small = choose_from_data(small, ImageDataset(digits(200)), {"train.epochs"}, Choices())
    large = choose_from_data(large, ImageDataset(np.zeros((60000, 1, 4, 4), np.uint8)), {"train.epochs"}, Choices())
    steps = lambda config, n: config.train.epochs * (n * 0.95 // 64)  # noqa: E731
    assert 1500 <= steps(small, 200) < 1600 and steps(large, 60000) <= 20000 + 900


def test_gray_photographs_are_not_mistaken_for_digits():
    rng = np.random.default_rng(3)
    gray = (rng.uniform(60, 200, (32, 1, 1, 1)) + rng.normal(0, 20, (32, 1, 28, 28))).clip(0, 255).astype(np.uint8)
    assert not is_near_binary(gray)
    config = Config()
    config = choose_from_data(config, ImageDataset(gray), {"likelihood.name"}, Choices())
    assert config.likelihood.name == "laplace"


@pytest.mark.parametrize(("speedup", "chosen"), [(3.2, "bf16"), (0.5, "fp32"), (0.0, "fp32")])
def test_bf16_is_chosen_only_where_its_matrix_products_are_measured_faster(monkeypatch, speedup, chosen):
    monkeypatch.setattr(defaults, "bf16_speedup", lambda device: speedup)
    config, choices = Config(), Choices()
    config = choose_from_data(config, ImageDataset(digits()), {"train.precision"}, choices)
    assert config.train.precision == chosen
    assert any(line.strip().startswith(f"train.precision = {chosen}  (bf16 matrix products") for line in choices.lines)


def test_the_bf16_speedup_is_measured_on_this_cpu():
    speedup = defaults.bf16_speedup("cpu")
    assert speedup == 0.0 or 0.05 < speedup < 50  # no bf16 units, or a timed ratio


@pytest.mark.parametrize(("side", "size"), [(28, 28), (40, 40), (30, 16), (178, 64), (6, 8)])
def test_the_image_size_keeps_small_images_as_they_are(tmp_path, side, size):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (side + 10, side)).save(folder / f"{i}.png")
    config, choices = Config().with_overrides({"data.source": str(folder)}), Choices()
    config = choose_image_size(config, {"data.image_size"}, choices)
    assert config.data.image_size == size


def test_the_image_size_of_an_idx_folder_is_read_from_its_header(tmp_path):
    header = bytes([0, 0, 8, 3]) + (5).to_bytes(4, "big") + (28).to_bytes(4, "big") + (28).to_bytes(4, "big")
    (tmp_path / "train-images-idx3-ubyte").write_bytes(header + bytes(5 * 28 * 28))
    assert typical_image_size(str(tmp_path)) == 28


def test_natural_images_get_the_recipe_layers_and_digits_keep_plain_ones():
    gray = np.random.default_rng(3).integers(60, 200, (32, 1, 28, 28), dtype=np.uint8)
    photos_config, digits_config = Config(), Config()
    photos_config = choose_from_data(photos_config, ImageDataset(gray), free_keys(set()), Choices())
    digits_config = choose_from_data(digits_config, ImageDataset(digits()), free_keys(set()), Choices())
    layers = lambda c: (c.model.kernel_size, c.model.norm, c.model.activation)  # noqa: E731
    assert layers(photos_config) == (4, "batch", "leaky_relu")
    assert layers(digits_config) == layers(Config())


def test_the_budget_counts_only_the_sources_own_training_images():
    partition = np.array([0] * 150 + [1] * 50)  # 150 train, 50 test
    config, choices = Config(), Choices()
    config = choose_from_data(config, ImageDataset(digits(200), partition=partition), {"train.epochs"}, choices)
    assert "150 training images" in choices.lines[0]


def test_a_celeba_folders_image_size_comes_from_its_images(tmp_path):
    from tests.data.test_celeba import _fake_celeba

    assert typical_image_size(str(_fake_celeba(tmp_path / "celeba"))) == 178  # 178 x 218 aligned faces


def test_colour_line_art_is_not_mistaken_for_digits():
    rgb = np.zeros((32, 3, 28, 28), np.uint8)
    rgb[:, :, ::2] = 255  # black and white stripes, in colour
    assert not is_near_binary(rgb)
    config = choose_from_data(Config(), ImageDataset(rgb), {"likelihood.name"}, Choices())
    assert config.likelihood.name == "laplace"


def test_timing_the_matrix_products_leaves_the_global_random_streams_as_they_were():
    import torch

    before = torch.random.get_rng_state()
    defaults.matmul_seconds(torch.float32, size=32, repeats=1)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_near_binary_counts_pixels_near_white_as_well_as_near_black():
    import numpy as np

    white_on_black = np.where(np.arange(64 * 64).reshape(1, 1, 64, 64) % 2, 255, 0).astype(np.uint8)
    black_on_white = 255 - white_on_black
    mostly_white = np.full((1, 1, 64, 64), 250, np.uint8)  # line art on paper: near-white almost everywhere
    assert is_near_binary(white_on_black) and is_near_binary(black_on_white) and is_near_binary(mostly_white)
    assert not is_near_binary(np.full((1, 1, 64, 64), 128, np.uint8))
    assert not is_near_binary(np.repeat(mostly_white, 3, axis=1))  # colour is never "binary"


@pytest.mark.parametrize(("size", "grid"), [(32, 64), (64, 64), (128, 64), (256, 16), (512, 4)])
def test_a_sample_grid_stays_about_a_thousand_pixels_wide(size, grid):
    images = np.random.default_rng(0).integers(0, 255, (4, 3, size, size), dtype=np.uint8)
    chosen = choose_from_data(Config(), ImageDataset(images), free_keys(set()), Choices())
    assert chosen.train.grid_size == grid
