"""Model folders describe themselves and load from a path or a Hub id (a local snapshot; no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import vaekit
from tests.helpers import tiny_config
from vaekit.pretrained import describe
from vaekit.training.trainer import Trainer


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return Trainer(tiny_config(), tmp_path_factory.mktemp("share") / "run").fit()


def test_a_finished_run_has_a_model_card_with_versions_data_and_final_metrics(run):
    info = json.loads((run / "model" / "vaekit.json").read_text())
    assert info["vaekit_version"] == vaekit.__version__ and info["architecture"] == "conv"
    assert info["steps"] == 14 and info["final_metrics"]["neg_elbo"] > 0
    assert info["data"]["source"] == "shapes" and info["parameters"] > 1000
    card = (run / "model" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: vaekit") and "neg_elbo" in card


def test_save_pretrained_round_trips(run, tmp_path):
    model = vaekit.load(run)
    folder = model.save_pretrained(tmp_path / "shared")
    again = vaekit.load(folder)
    z = torch.randn(2, *model.latent_shape)
    torch.testing.assert_close(again.decode_images(z), model.decode_images(z))
    assert again.info["final_metrics"] == model.info["final_metrics"]


def test_a_hub_id_loads_from_the_local_hub_cache_when_offline(run, tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    cache = tmp_path / "hub"
    snapshot = cache / "models--someone--tiny-vae" / "snapshots" / ("0" * 40)
    vaekit.load(run).save_pretrained(snapshot)
    (cache / "models--someone--tiny-vae" / "refs").mkdir()
    (cache / "models--someone--tiny-vae" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    model = vaekit.load("hf://someone/tiny-vae")
    assert model.config.model.arch == "conv" and model.info["steps"] == 14
    with pytest.raises(ValueError, match="the Hub could not provide it"):
        vaekit.load("hf://someone/not-there")


def test_info_describes_a_run(run):
    info = describe(str(run))
    assert info["architecture"] == "conv" and info["steps"] == 14 and "neg_elbo" in info["final_metrics"]


def test_a_model_records_its_config_when_built_and_saves_itself_without_training(tmp_path):
    from tests.helpers import tiny_config
    from vaekit.models import create_model

    config = tiny_config()
    model = create_model(config)
    assert model.config == config
    folder = model.save_pretrained(tmp_path / "untrained")
    loaded = vaekit.load(folder)
    assert loaded.config == config
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True)
    )


def test_a_shared_config_that_asks_for_a_huge_model_is_refused_before_it_is_allocated(tmp_path):
    """A run's config.yaml edited to ask for 2 x 8,000 channels (2.3 GB of weights) while its
    weights hold a small model: refused from the weight file's header, nothing allocated (D24)."""
    import resource

    import yaml

    from tests.helpers import tiny_config
    from vaekit.io.checkpoints import CheckpointError

    run = vaekit.train(tiny_config(**{"train.max_steps": 1}), out=tmp_path / "run")
    raw = yaml.safe_load((run / "model" / "config.yaml").read_text())
    raw["model"]["channels"] = [8000, 8000]
    (run / "model" / "config.yaml").write_text(yaml.safe_dump(raw))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match=r"does not fit this ConvVAE.*wrong shape"):
        vaekit.load(run / "model")
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 300


def test_info_takes_the_final_metrics_from_the_last_validation_row(tmp_path):
    run = Trainer(tiny_config(**{"train.epochs": 2}), tmp_path / "run").fit()
    card = json.loads((run / "model" / "vaekit.json").read_text())
    del card["final_metrics"]
    (run / "model" / "vaekit.json").write_text(json.dumps(card))
    rows = [line.split(",") for line in (run / "metrics.csv").read_text().splitlines()]
    header, val = rows[0], [row for row in rows[1:] if row[2] == "val"]
    assert len(val) == 2
    expected = float(val[-1][header.index("neg_elbo")])
    assert describe(str(run))["final_metrics"]["neg_elbo"] == pytest.approx(expected)


def test_info_on_a_plug_in_run_imports_no_code_without_trust(tmp_path):
    from vaekit.plugins import UntrustedCode

    config = tiny_config(**{"model.arch": "tests.networks:TinyPluginVAE", "train.max_steps": 1})
    run = vaekit.train(config, out=tmp_path / "run", trust_code=True)
    with pytest.raises(UntrustedCode):
        describe(str(run))
    assert describe(str(run), trust_code=True)["architecture"] == "tests.networks:TinyPluginVAE"


def test_a_local_folder_named_like_owner_slash_name_is_loaded_from_disk(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    vaekit.load(run).save_pretrained(tmp_path / "someone" / "model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert vaekit.load("someone/model").config == vaekit.load(run).config


def test_a_mistyped_run_beside_its_folder_is_never_looked_up_on_the_hub(tmp_path, monkeypatch):
    import vaekit.io.hub as hub
    from vaekit.io.checkpoints import CheckpointError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    asked = []
    monkeypatch.setattr(hub, "require", lambda *args: asked.append(args))
    with pytest.raises(CheckpointError, match=r"runs/bsae: no such folder \(a Hub model is named hf://runs/bsae\)"):
        vaekit.load("runs/bsae")
    assert asked == []  # the Hub was not asked
    assert hub.hub_id("hf://runs/bsae") == "runs/bsae" and hub.hub_id(str(Path("hf://runs/bsae"))) == "runs/bsae"


def test_a_bare_owner_and_name_is_a_local_path_even_where_no_folder_could_be_meant(tmp_path, monkeypatch):
    import vaekit.io.hub as hub
    from vaekit.io.checkpoints import CheckpointError

    monkeypatch.chdir(tmp_path)  # no runs/ folder here: before, runs/no-such-run was asked of the Hub
    asked = []
    monkeypatch.setattr(hub, "require", lambda *args: asked.append(args))
    for name in ("runs/no-such-run", "someone/model"):
        with pytest.raises(CheckpointError, match="no such folder"):
            vaekit.load(name)
        assert hub.hub_id(name) is None
    assert asked == []
