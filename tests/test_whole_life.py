"""The whole-life contract: every registered component (the toys of tests/components/ too) goes
through what every real run takes, through the public API: train a few steps (validation at the end,
the discretised likelihood where the likelihood defines one), checkpoint, resume bit-identically,
save, load in a fresh process, evaluate with the default metrics, sample, reconstruct and export.
A capability a component lacks is declared and refused in one line (a ``ConfigError``), never a bare
``NotImplementedError``. ``test_contracts.py`` holds the cheaper step-level matrix of combinations."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import vaekit
from tests import networks
from tests.test_contracts import BROUGHT_BY_THE_TEST
from vaekit.config import ConfigError
from vaekit.data.registry import DATA_SOURCES
from vaekit.likelihoods import LIKELIHOODS
from vaekit.models import ARCHITECTURES, LATENTS
from vaekit.objectives import OBJECTIVES, TERMS

LIFE = {  # the reference components (conv, gaussian, elbo) at a size that trains in a fraction of a second
    "data.source": "shapes",
    "data.num_images": 40,
    "data.image_size": 8,
    "data.channels": 3,
    "data.val_fraction": 0.2,
    "model.arch": "conv",
    "model.latent_dim": 3,
    "model.channels": [4, 8],
    "likelihood.name": "gaussian",
    "likelihood.scale": 0.1,
    "train.batch_size": 8,
    "train.max_steps": 4,
    "train.checkpoint_every": 2,
    "train.log_every": 2,
    "train.grid_size": 4,
    "train.threads": 1,
    "train.fit_sampler": False,  # fitted where the latent kind has no prior (below)
}
pytestmark = pytest.mark.xdist_group("whole-life")  # one worker: the last test loads every run in a fresh process
SPATIAL = "spatial"  # the architecture a term that needs a spatial latent trains with
FOUNDATION = {  # a term that needs a foundation network gets a tiny random DINOv2 (its folder: a fixture)
    "alignment": {
        "objective.alignment.network": "TINY_DINOV2",
        "objective.alignment.random_weights": True,
        "objective.alignment.image_size": 32,
    }
}

TEACHER = {"distill": {"objective.distill.teacher": "LIFE_TEACHER"}}  # a model of LIFE's network (a fixture)


def _lives():
    for entry in ARCHITECTURES:
        yield pytest.param(
            {"model.arch": entry.name, **entry.tiny, **_brought(entry.name)}, id=f"architecture-{entry.name}"
        )
    for entry in LIKELIHOODS:
        yield pytest.param(
            {"likelihood.name": entry.name, **entry.tiny, **_brought(entry.name)}, id=f"likelihood-{entry.name}"
        )
    for entry in LATENTS:
        fit = {} if entry.has("prior") else {"train.fit_sampler": True}  # its samples come from the end's fit
        yield pytest.param({"model.latent": entry.name, **entry.tiny, **fit}, id=f"latent-{entry.name}")
    for entry in OBJECTIVES:
        settings = {"objective.name": entry.name, **entry.tiny, **TEACHER.get(entry.name, {})}
        yield pytest.param(settings, id=f"objective-{entry.name}")
    for entry in TERMS:
        settings = {f"{entry.options_key}.enabled": True, **entry.tiny, **FOUNDATION.get(entry.name, {})}
        settings["objective.name"] = sorted(entry.declares["objectives"])[0]
        if entry.has("spatial-latent"):
            settings |= {"model.arch": SPATIAL, **ARCHITECTURES.get(SPATIAL).tiny}
        if entry.has("second-phase"):
            settings["data.image_size"] = 16  # a PatchGAN of one layer needs 6 px; its logits need more
        yield pytest.param(settings, id=f"term-{entry.name}")


def _brought(name: str) -> dict:
    """What a tiny instance needs from the test itself (users' own networks), at LIFE's sizes."""
    if name == "modules":
        return {
            **BROUGHT_BY_THE_TEST["modules"],
            "model.modules.encoder_args": {"inputs": 192, "latent": 3},
            "model.modules.decoder_args": {"latent": 3, "shape": [3, 8, 8]},
        }
    return BROUGHT_BY_THE_TEST.get(name, {})


LIVED: list[Path] = []  # the runs, loaded in one fresh process by the last test


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "model" / "model.safetensors")


def _rows(run: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))


@pytest.fixture(scope="module")
def dinov2(tmp_path_factory) -> str:
    pytest.importorskip("transformers")
    return str(networks.tiny_dinov2(tmp_path_factory.mktemp("dinov2")))


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> str:
    from vaekit.config import Config
    from vaekit.models import create_model

    folder = tmp_path_factory.mktemp("teacher") / "model"
    create_model(Config().with_overrides(LIFE)).save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("settings", list(_lives()))
def test_the_whole_life(settings, tmp_path, request):
    for placeholder, fixture in (("TINY_DINOV2", "dinov2"), ("LIFE_TEACHER", "teacher")):
        if placeholder in settings.values():
            folder = request.getfixturevalue(fixture)
            settings = {key: folder if value == placeholder else value for key, value in settings.items()}
    overrides = [f"{key}={json.dumps(value)}" for key, value in {**LIFE, **settings}.items()]
    straight = vaekit.train(out=tmp_path / "straight", overrides=overrides, trust_code=True)

    # resumed from its checkpoint at step 2, it ends bit-identical to the straight run
    half = vaekit.train(out=tmp_path / "resumed", overrides=[*overrides, "train.max_steps=2"], trust_code=True)
    resumed = vaekit.train(resume=half, overrides=["train.max_steps=4"], trust_code=True)
    reference, weights = _weights(straight), _weights(resumed)
    assert weights.keys() == reference.keys()
    assert all(torch.equal(weights[k], reference[k]) for k in reference)

    # validated at the end: finite held-out numbers, and the discretised likelihood where it is defined
    validation = [row for row in _rows(straight) if row["split"] == "val"]
    assert validation and all(math.isfinite(float(validation[-1][k])) for k in ("neg_elbo", "nll", "kl"))
    model = vaekit.load(straight, trust_code=True)

    report = vaekit.evaluate(straight, max_images=8, iwae_k=2, trust_code=True)
    assert report["metrics"] and all(_finite(value) for value in _leaves(report["metrics"]))
    if "elbo" in report["metrics"]:  # (a latent kind without a prior has no ELBO)
        discrete = "discrete_bits_per_dim" in report["metrics"]["elbo"]
        assert discrete == model.likelihood.measures_pixels  # the 8-bit mass where the likelihood defines one
    if not LATENTS.get(model.config.model.latent).has("prior"):  # from the sampler fitted at the end
        assert model.latent_sampler is not None
        with pytest.raises(ConfigError, match="no prior to draw from"):
            vaekit.sample(vaekit.use_sampler(straight, "prior", trust_code=True), 2)
    samples = vaekit.sample(model, 2)
    assert samples.shape == (2, *model.image_shape) and torch.isfinite(samples).all()
    images = torch.rand(2, *model.image_shape, generator=torch.Generator().manual_seed(0))
    reconstructed = vaekit.reconstruct(model, images)
    assert reconstructed.shape == images.shape and torch.isfinite(reconstructed).all()
    _exports_or_refuses_in_one_line(model, tmp_path / "export")
    LIVED.append(straight)


def _exports_or_refuses_in_one_line(model, folder: Path) -> None:
    """Every format the architecture declares is written; every other one is refused in one line."""
    from vaekit.export import FORMATS, export

    entry = next(e for e in ARCHITECTURES if e.factory is type(model))
    for fmt in FORMATS:
        if entry.has(fmt):
            written = export(model, folder / fmt, fmt)
            assert written and all(path.is_file() for path in written), fmt
        else:
            with pytest.raises(ConfigError) as refused:
                export(model, folder / fmt, fmt)
            assert "\n" not in str(refused.value) and f"cannot be written as {fmt}" in str(refused.value)


def _leaves(tree):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _leaves(value)
    elif isinstance(tree, list | tuple):
        for value in tree:
            yield from _leaves(value)
    else:
        yield tree


def _finite(value) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def _data_sources(folder: Path) -> dict[str, str]:
    """A spec for each data source that trains from files made here (or from nothing)."""
    import numpy as np
    from PIL import Image

    images = np.random.default_rng(0).integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    (folder / "pngs").mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / "pngs" / f"{i:02d}.png")
    np.save(folder / "images.npy", images)
    specs = {"images": str(folder / "pngs"), "array": str(folder / "images.npy")}
    return specs | {e.name: e.name for e in DATA_SOURCES if e.has("no-path") and e.name != "mnist"}


NEEDS_FILES_OF_ITS_OWN = {"celeba", "shards", "idx", "mnist"}  # covered by tests/data/ with their own layouts


def test_the_data_sources_cover_every_registered_one():
    assert {e.name for e in DATA_SOURCES} - NEEDS_FILES_OF_ITS_OWN <= {"images", "array"} | {
        e.name for e in DATA_SOURCES if e.has("no-path")
    }


@pytest.mark.parametrize("name", [e.name for e in DATA_SOURCES if e.name not in NEEDS_FILES_OF_ITS_OWN])
def test_every_data_source_trains_resumes_and_loads(name, tmp_path):
    spec = _data_sources(tmp_path)[name]
    overrides = [f"{key}={json.dumps(value)}" for key, value in LIFE.items() if key != "data.source"]
    straight = vaekit.train(data=spec, out=tmp_path / "straight", overrides=overrides)
    half = vaekit.train(data=spec, out=tmp_path / "resumed", overrides=[*overrides, "train.max_steps=2"])
    resumed = vaekit.train(resume=half, overrides=["train.max_steps=4"])
    reference, weights = _weights(straight), _weights(resumed)
    assert all(torch.equal(weights[k], reference[k]) for k in reference)
    assert torch.isfinite(vaekit.sample(vaekit.load(straight), 2)).all()
    LIVED.append(straight)


def test_every_run_of_the_whole_life_loads_in_a_fresh_process():
    if not LIVED:
        pytest.skip("no whole-life run in this session (run the file whole)")
    code = textwrap.dedent(
        """
        import sys, torch, vaekit
        torch.set_num_threads(1)  # as the runs trained: the same order of float sums
        for run in sys.argv[1:]:
            model = vaekit.load(run, trust_code=True)
            images = torch.rand(2, *model.image_shape, generator=torch.Generator().manual_seed(0))
            print(run, float(vaekit.reconstruct(model, images).sum()))
        """
    )
    done = subprocess.run([sys.executable, "-c", code, *map(str, LIVED)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    fresh = dict(line.rsplit(" ", 1) for line in done.stdout.strip().splitlines())
    for run in LIVED:
        model = vaekit.load(run, trust_code=True)
        images = torch.rand(2, *model.image_shape, generator=torch.Generator().manual_seed(0))
        assert float(fresh[str(run)]) == float(vaekit.reconstruct(model, images).sum()), run
