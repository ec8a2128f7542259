"""A model folder describes itself: vaekit.json and a model card a reader of the Hub understands."""

from __future__ import annotations

from tests.helpers import tiny_config
from vaekit.io.card import read_info, write_model_card
from vaekit.models import create_model


def test_the_model_card_states_the_latent_scaling_a_diffusion_model_needs(tmp_path):
    config = tiny_config()
    write_model_card(tmp_path, config, create_model(config), 7, {"neg_elbo": 12.5}, {"scaling_factor": 0.18215,
                     "shift_factor": 0.0625})  # fmt: skip
    card = (tmp_path / "README.md").read_text()
    assert "scaling_factor 0.18215, shift_factor 0.0625" in card and "| neg_elbo | 12.5 |" in card
    assert read_info(tmp_path)["latent_scaling"] == {"scaling_factor": 0.18215, "shift_factor": 0.0625}


def test_a_model_without_measured_scaling_has_no_latent_section(tmp_path):
    config = tiny_config()
    write_model_card(tmp_path, config, create_model(config), 7, {})
    assert "scaling_factor" not in (tmp_path / "README.md").read_text()


def test_what_a_model_card_publishes_names_the_data_without_the_machines_folders(tmp_path):
    import numpy as np
    from PIL import Image

    import vaekit
    from tests.helpers import tiny_config
    from vaekit.io.card import published_source

    photos = tmp_path / "home" / "alice" / "private" / "photos"
    photos.mkdir(parents=True)
    for i in range(20):
        Image.fromarray(np.full((16, 16, 3), i * 10, np.uint8)).save(photos / f"{i}.png")
    run = vaekit.train(tiny_config(**{"train.max_steps": 1}), data=str(photos), out=tmp_path / "run")
    for published in ("README.md", "vaekit.json"):
        text = (run / "model" / published).read_text()
        assert "alice" not in text and "photos" in text, published
    assert str(photos) in (run / "config.yaml").read_text()  # what later local commands need
    assert published_source("https://me:secret@host/s/x.tar?sig=1") == "https://host/s/x.tar"
    assert published_source("celeba:/home/alice/celeba") == "celeba:celeba"


def test_an_evaluation_of_a_run_is_kept_in_its_card_one_row_per_split_and_sampler(tmp_path):
    import json

    from vaekit.io.card import record_evaluation

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "README.md").write_text("# a model\n\n## Sampling\n\nfrom a mixture\n")
    for sampler, fid in (("the prior", 30.5), ("a 4-component Gaussian mixture", 12.25)):
        report = {
            "data": {"split": "test"},
            "settings": {"sampler": sampler, "feature_network": "classifier.safetensors"},
            "metrics": {"generation": {"fid": fid, "precision": 0.5}, "reconstruction": {"psnr": 20.0}},
        }
        record_evaluation(folder, report)
    evaluations = json.loads((folder / "vaekit.json").read_text())["evaluations"]
    assert [row["fid"] for row in evaluations.values()] == [30.5, 12.25]
    card = (folder / "README.md").read_text()
    assert card.count("## Evaluations") == 1 and "## Sampling" in card
    assert "fid 30.5" in card and "fid 12.25" in card and "psnr 20" in card
