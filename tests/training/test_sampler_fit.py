"""A finished run ends by fitting its ex-post sampler (a Gaussian mixture of the training latents),
names it in its card, and everything that draws new images uses it unless told otherwise."""

from __future__ import annotations

import json

import pytest
import torch

import vaekit
from tests.helpers import tiny_config
from vaekit.config import Config
from vaekit.training.trainer import Trainer

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    settings = {"train.max_steps": 4, "train.sampler_images": 100, "train.fit_sampler": True, "data.num_images": 160}
    config = tiny_config(**settings)
    return Trainer(config, tmp_path_factory.mktemp("r") / "run").fit()


def test_a_finished_run_fits_saves_and_names_its_sampler(run):
    folder = run / "model"
    assert (folder / "sampler-gmm.safetensors").is_file() and (folder / "sampler-two-stage.safetensors").is_file()
    named = json.loads((folder / "vaekit.json").read_text())["sampler"]
    assert named["name"] in ("gmm", "two-stage") and "on 100 posterior means" in named["description"]  # bounded
    assert "chosen by held-out log-density per latent" in named["description"]
    assert "## Sampling" in (folder / "README.md").read_text()
    assert (run / "images" / "samples-final.png").is_file() and (run / "images" / "samples-final-prior.png").is_file()


def test_loading_a_run_draws_from_its_sampler_and_the_prior_is_one_word_away(run):
    model = vaekit.load(run)
    assert model.latent_sampler is not None
    from_mixture = vaekit.sample(model, 4, seed=1)
    expected = model.latent_sampler.draw(4, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(from_mixture, model.decode_images(expected), rtol=0, atol=0)
    prior = vaekit.use_sampler(run, "prior")
    assert prior.latent_sampler is None and not torch.equal(vaekit.sample(prior, 4, seed=1), from_mixture)


def test_the_samples_grid_of_the_end_comes_from_the_sampler(run):
    from PIL import Image

    fitted = Image.open(run / "images" / "samples-final.png").tobytes()
    prior = Image.open(run / "images" / "samples-final-prior.png").tobytes()
    assert fitted != prior


def test_a_run_told_not_to_fit_one_draws_from_the_prior(tmp_path):
    assert Config().train.fit_sampler  # fitted by default (tests' tiny runs opt out)
    done = Trainer(tiny_config(**{"train.max_steps": 2, "train.fit_sampler": False}), tmp_path / "run").fit()
    assert not (done / "model" / "sampler-gmm.safetensors").exists()
    assert "sampler" not in json.loads((done / "model" / "vaekit.json").read_text())
    assert vaekit.load(done).latent_sampler is None


def test_a_sampler_file_that_went_missing_is_a_warning_and_the_prior(run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run / "model", copy)
    name = json.loads((copy / "vaekit.json").read_text())["sampler"]["name"]
    (copy / f"sampler-{name}.safetensors").unlink()
    with pytest.warns(UserWarning, match=f"its sampler {name} cannot be used"):
        model = vaekit.load(copy)
    assert model.latent_sampler is None


def test_a_tokenizer_is_left_to_its_token_prior(tmp_path):
    pytest.importorskip("vector_quantize_pytorch")
    settings = {
        "train.max_steps": 2,
        "train.fit_sampler": True,
        "model.latent": "fsq",
        "model.fsq.levels": [3, 3],
        "model.latent_dim": 4,
    }
    done = Trainer(tiny_config(**settings), tmp_path / "run").fit()
    assert not (done / "model" / "sampler-gmm.safetensors").exists()
