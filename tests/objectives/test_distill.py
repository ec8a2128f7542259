"""Distillation: a student learns a frozen teacher's latents (its encoder) and the teacher's decodes
of those latents (its decoder); the result is a preview decoder that sample and the explorer use."""

from __future__ import annotations

import csv

import pytest
import torch

import vaekit
from tests.helpers import tiny_config
from vaekit.config import ConfigError
from vaekit.engine.precision import Precision
from vaekit.engine.step import StepInfo
from vaekit.models import create_model
from vaekit.objectives import create_objective

pytest.importorskip("diffusers")

KL = {  # a small latent-diffusion-style teacher: 16 px images -> (2, 8, 8) latents
    "model.arch": "autoencoder-kl",
    "model.autoencoder_kl.block_out_channels": [8, 8],
    "model.autoencoder_kl.layers_per_block": 1,
    "model.autoencoder_kl.latent_channels": 2,
    "model.autoencoder_kl.norm_num_groups": 4,
    "likelihood.name": "laplace",
    "likelihood.output": "signed",
    "data.num_images": 64,
    "train.batch_size": 16,
}
WIDTHS = {"model.diffusers.config.encoder_block_out_channels": [8, 8]}
WIDTHS |= {"model.diffusers.config.decoder_block_out_channels": [8, 8]}
NARROW = [f"{key}={value}".replace(" ", "") for key, value in WIDTHS.items()]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return vaekit.train(tiny_config(**KL, **{"train.max_steps": 3}), out=tmp_path_factory.mktemp("t") / "teacher")


def test_the_loss_is_the_latent_error_plus_the_nll_of_the_teachers_decodes(teacher):
    from vaekit.objectives.distill import student_config

    weights = {"objective.distill.latent_weight": 0.3, "objective.distill.decode_weight": 2.0}
    config = student_config(vaekit.load(teacher), str(teacher)).with_overrides({**weights, **WIDTHS})
    torch.manual_seed(0)
    student = create_model(config)
    objective = create_objective(student, config, Precision("fp32", torch.device("cpu")))
    batch = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        latent = objective.teacher.encode(objective.teacher.likelihood.prepare(batch)).mean
        image = objective.teacher.likelihood.mean(objective.teacher.decode(latent)).clamp(0, 1)
        error = (student.encode(student.likelihood.prepare(batch)).mean - latent).square().flatten(1).sum(1).mean()
        nll = student.likelihood.nll(student.decode(latent), student.likelihood.prepare(image)).mean()
    logs = objective.step(batch, StepInfo(0, 0.0, 10, 4))
    torch.testing.assert_close(logs["latent_error"], error)
    torch.testing.assert_close(logs["decode_nll"], nll)
    torch.testing.assert_close(logs["loss"], 0.3 * error + 2.0 * nll)


def test_a_tiny_student_learns_the_teacher_and_becomes_its_preview_decoder(teacher, tmp_path):
    budget = ["train.max_steps=40", "train.lr=3e-3", *NARROW]
    student = vaekit.distill(teacher, out=tmp_path / "student", overrides=budget)
    rows = [r for r in csv.DictReader((student / "metrics.csv").open()) if r["split"] == "train"]
    assert float(rows[-1]["decode_nll"]) < float(rows[0]["decode_nll"])
    assert float(rows[-1]["latent_error"]) < float(rows[0]["latent_error"])
    model = vaekit.load(student)
    assert model.class_name == "AutoencoderTiny" and model.latent_shape == vaekit.load(teacher).latent_shape

    previews = vaekit.use_decoder(teacher, student)  # the teacher's latents, the student's decoder
    z = previews.draw_latents(3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(previews.to_image(z), model.to_image(z), rtol=0, atol=0)
    assert vaekit.sample(previews, 3).shape == (3, 3, 16, 16)


def test_the_explorer_previews_with_a_distilled_decoder(teacher, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from vaekit.web.app import create_app

    student = vaekit.distill(teacher, out=tmp_path / "student", overrides=["train.max_steps=2", *NARROW])
    client = TestClient(create_app(teacher, allowed_hosts=["testserver"], decoder=student))
    response = client.post("/api/samples", json={"count": 2, "seed": 1})
    assert response.status_code == 200 and len(response.json()["images"]) == 2


def test_decoder_only_distillation_keeps_the_students_encoder(teacher, tmp_path):
    first = vaekit.distill(teacher, out=tmp_path / "a", overrides=["train.max_steps=2", *NARROW])
    tuned = vaekit.train(resume=first, out=tmp_path / "b", overrides=["train.max_steps=4", "train.trainable=decoder"])
    before, after = vaekit.load(first).state_dict(), vaekit.load(tuned).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("encoder."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))


def test_a_student_of_another_latent_shape_or_no_teacher_is_one_line(teacher):
    config = tiny_config(**{"objective.name": "distill"})
    model = create_model(config)
    with pytest.raises(ConfigError, match="name the model to distil"):
        create_objective(model, config, Precision("fp32", torch.device("cpu")))
    config = config.with_overrides({"objective.distill.teacher": str(teacher)})
    with pytest.raises(ConfigError, match=r"its latent is \(2, 8, 8\), the student's \(4,\)") as refused:
        create_objective(model, config, Precision("fp32", torch.device("cpu")))
    assert "\n" not in str(refused.value)
    with pytest.raises(ConfigError, match="--decoder: it decodes latents"):
        vaekit.use_decoder(teacher, model)
