"""Any diffusers autoencoder class as a vaekit model (model.arch: diffusers): built by the class from
its own config, trained with vaekit's loop, resumed bit for bit, fine-tuned decoder-only with the
encoder untouched, and written back as the same class that diffusers' own from_pretrained reads."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import tiny_config
from vaekit.api import load, train
from vaekit.config import ConfigError
from vaekit.export import export_diffusers
from vaekit.models import create_model
from vaekit.models.diffusers_adapter import CLASSES
from vaekit.training.trainer import Trainer

diffusers = pytest.importorskip("diffusers")

# The smallest config of each class that keeps its structure (blocks, attention, patchify, registers).
TINY = {
    "AutoencoderKLFlux2": {
        "block_out_channels": [8, 8], "layers_per_block": 1, "latent_channels": 2, "norm_num_groups": 4,
        "down_block_types": ["DownEncoderBlock2D"] * 2, "up_block_types": ["UpDecoderBlock2D"] * 2,
    },
    "AutoencoderKLQwenImage": {
        "base_dim": 8, "z_dim": 2, "dim_mult": [1, 2], "num_res_blocks": 1, "temperal_downsample": [False],
        "latents_mean": [0.0, 0.0], "latents_std": [1.0, 1.0],
    },
    "AutoencoderDC": {
        "latent_channels": 2, "attention_head_dim": 4, "encoder_block_types": ["ResBlock", "EfficientViTBlock"],
        "decoder_block_types": ["ResBlock", "EfficientViTBlock"], "encoder_block_out_channels": [8, 16],
        "decoder_block_out_channels": [8, 16], "encoder_layers_per_block": [1, 1], "decoder_layers_per_block": [1, 1],
        "encoder_qkv_multiscales": [[], [5]], "decoder_qkv_multiscales": [[], [5]],
    },
    "AutoencoderTiny": {
        "encoder_block_out_channels": [8, 8], "decoder_block_out_channels": [8, 8], "num_encoder_blocks": [1, 1],
        "num_decoder_blocks": [1, 1], "latent_channels": 2,
    },
    "AutoencoderRAE": {
        "encoder_type": "dinov2", "encoder_hidden_size": 64, "encoder_patch_size": 8, "encoder_num_hidden_layers": 1,
        "decoder_hidden_size": 32, "decoder_num_hidden_layers": 1, "decoder_num_attention_heads": 2,
        "decoder_intermediate_size": 64, "patch_size": 4, "encoder_input_size": 32, "noise_tau": 0.5,
    },
}  # fmt: skip


def settings(name: str, **more) -> dict:
    spec = CLASSES[name]
    return {
        "model.arch": "diffusers",
        "model.diffusers.class_name": name,
        "model.diffusers.config": TINY[name],
        "model.latent": spec.latent,
        "likelihood.name": "laplace",
        "likelihood.output": spec.output,
        "data.image_size": 16,
        "data.num_images": 48,
        "train.batch_size": 8,
        "train.checkpoint_every": 5,
        **more,
    }


def test_every_class_the_issue_names_is_covered():
    assert set(TINY) == set(CLASSES)


@pytest.mark.parametrize("name", sorted(TINY))
def test_the_latent_shape_is_what_the_class_encodes_to(name):
    model = create_model(tiny_config(**settings(name))).eval()
    posterior = model.encode(model.likelihood.prepare(torch.rand(2, 3, 16, 16)))
    assert tuple(posterior.mean.shape[1:]) == model.latent_shape
    assert model.decode(posterior.mean).shape == (2, 3, 16, 16)


def _weights(run):
    return load_file(str(run / "model" / "model.safetensors"))


FAST = "AutoencoderTiny"  # in make test; every class in make test-all (3-5 s each)


@pytest.mark.parametrize("name", [pytest.param(n, marks=[] if n == FAST else [pytest.mark.slow]) for n in sorted(TINY)])
def test_a_class_trains_resumes_bit_identically_fine_tunes_its_decoder_and_exports_to_itself(name, tmp_path):
    straight = Trainer(tiny_config(**settings(name, **{"train.max_steps": 8})), tmp_path / "a").fit()
    first = Trainer(tiny_config(**settings(name, **{"train.max_steps": 4})), tmp_path / "b").fit()
    resumed = train(resume=first, overrides=["train.max_steps=8"])
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    before = load(straight)
    assert any(not torch.equal(before.state_dict()[k], v) for k, v in create_model(before.config).state_dict().items())

    tuned = Trainer(
        tiny_config(
            **settings(name, **{"train.max_steps": 3, "train.init": str(straight), "train.trainable": "decoder"})
        ),
        tmp_path / "tuned",
    ).fit()
    after = _weights(tuned)
    encoder = [k for k in a if k.startswith("encoder.")]
    assert encoder and all(torch.equal(a[k], after[k]) for k in encoder)  # the latent space kept
    assert any(not torch.equal(a[k], after[k]) for k in a if k.startswith("decoder."))

    model = load(tuned)
    folder = tmp_path / "exported"
    export_diffusers(model, folder)
    assert json.loads((folder / "config.json").read_text())["_class_name"] == name
    theirs = getattr(diffusers, name).from_pretrained(folder).eval()
    z = torch.randn(2, *model.latent_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model.decode(z)
        decoded = theirs.decode(z.unsqueeze(2) if CLASSES[name].frames else z).sample
    assert torch.equal(ours, decoded.squeeze(2) if CLASSES[name].frames else decoded)
    again = load(folder)  # and vaekit reads the folder back whole
    assert type(again).__name__ == "DiffusersVAE" and torch.equal(again.decode(z), ours)


def test_flux2s_latent_batch_norm_carries_the_measured_statistics_per_patch_channel(tmp_path):
    model = create_model(tiny_config(**settings("AutoencoderKLFlux2"))).eval()
    export_diffusers(model, tmp_path, {"scaling_factor": 2.0, "latents_mean": [1.0, -1.0], "latents_std": [2.0, 0.5]})
    bn = diffusers.AutoencoderKLFlux2.from_pretrained(tmp_path).bn
    assert bn.running_mean.tolist() == [1.0] * 4 + [-1.0] * 4
    assert bn.running_var.tolist() == [4.0] * 4 + [0.25] * 4


@pytest.mark.parametrize(
    ("name", "key", "expected"),
    [
        ("AutoencoderKLQwenImage", "latents_mean", [0.5, -0.5]),
        ("AutoencoderDC", "scaling_factor", 2.0),
        ("AutoencoderTiny", "shift_factor", 0.25),
    ],
)
def test_the_latent_statistics_are_written_where_each_class_keeps_them(name, key, expected, tmp_path):
    model = create_model(tiny_config(**settings(name))).eval()
    scaling = {"scaling_factor": 2.0, "shift_factor": 0.25, "latents_mean": [0.5, -0.5], "latents_std": [1.0, 2.0]}
    export_diffusers(model, tmp_path, scaling)
    assert json.loads((tmp_path / "config.json").read_text())[key] == expected


def test_the_rae_encoder_is_frozen_and_takes_pretrained_transformers_weights(tmp_path):
    transformers = pytest.importorskip("transformers")
    model = create_model(tiny_config(**settings("AutoencoderRAE")))
    assert model.encoder_frozen and not any(p.requires_grad for p in model.encoder.parameters())
    pretrained = model.autoencoder.encoder
    source = transformers.Dinov2WithRegistersModel(pretrained.config)
    torch.nn.init.normal_(source.embeddings.patch_embeddings.projection.weight)
    source.save_pretrained(tmp_path / "dinov2")
    config = tiny_config(**settings("AutoencoderRAE", **{"model.diffusers.encoder_from": str(tmp_path / "dinov2")}))
    loaded = create_model(config)
    weight = loaded.state_dict()["encoder.encoder.embeddings.patch_embeddings.projection.weight"]
    assert torch.equal(weight, source.embeddings.patch_embeddings.projection.weight)


def test_the_rae_noise_augments_only_while_training():
    model = create_model(tiny_config(**settings("AutoencoderRAE")))
    images = model.likelihood.prepare(torch.rand(2, 3, 16, 16))
    model.train()
    assert not torch.equal(model.encode(images).mean, model.encode(images).mean)
    model.eval()
    assert torch.equal(model.encode(images).mean, model.encode(images).mean)


@pytest.mark.parametrize(
    ("more", "message"),
    [
        ({"model.latent": "gaussian", "model.diffusers.class_name": "AutoencoderDC"}, "latent is deterministic"),
        ({"likelihood.output": "sigmoid"}, "set likelihood.output signed"),
        ({"model.diffusers.config": {"no_such_argument": 1}}, "AutoencoderKLFlux2 refused it"),
        ({"data.image_size": 12}, "does not divide"),
        ({"likelihood.name": "bernoulli"}, "decodes images"),
        ({"model.diffusers.class_name": "AutoencoderKLWan"}, "AutoencoderKLWan"),
    ],
)
def test_a_config_the_class_cannot_take_is_one_line(more, message):
    with pytest.raises(ConfigError, match=message) as caught:
        create_model(tiny_config(**{**settings("AutoencoderKLFlux2"), "model.diffusers.config": {}, **more}))
    assert "\n" not in str(caught.value)


def test_rae_has_no_tiled_decode_and_says_so():
    with pytest.raises(ConfigError, match="no tiled"):
        create_model(tiny_config(**settings("AutoencoderRAE", **{"model.diffusers.tiling": True})))


def test_init_from_a_flux2_folder_trains_that_class_with_every_tensor_it_holds(tmp_path):
    import vaekit

    folder = tmp_path / "flux2"
    source = diffusers.AutoencoderKLFlux2(in_channels=3, out_channels=3, **TINY["AutoencoderKLFlux2"], sample_size=16)
    source.bn.running_mean.fill_(0.5)  # the latent statistics a FLUX.2 pipeline normalises with
    source.save_pretrained(str(folder))
    run = vaekit.train(tiny_config(**{"train.max_steps": 2}), init=folder, out=tmp_path / "run")
    model = load(run)
    assert model.config.model.arch == "diffusers" and model.class_name == "AutoencoderKLFlux2"
    theirs = source.state_dict()
    ours = model.to_diffusers_state(model.state_dict())
    assert ours.keys() == theirs.keys() and torch.equal(ours["bn.running_mean"], theirs["bn.running_mean"])
