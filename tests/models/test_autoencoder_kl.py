"""The latent-diffusion KL autoencoder (diffusers' AutoencoderKL) as a vaekit model."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import torch

import vaekit
from tests.helpers import tiny_config
from vaekit.models import create_model

diffusers = pytest.importorskip("diffusers")

SMALL = {
    "model.arch": "autoencoder-kl",
    "model.autoencoder_kl.block_out_channels": [8, 16],
    "model.autoencoder_kl.layers_per_block": 1,
    "model.autoencoder_kl.latent_channels": 4,
    "model.autoencoder_kl.norm_num_groups": 8,
    "likelihood.name": "laplace",
    "likelihood.output": "signed",
    "data.image_size": 16,
    "train.batch_size": 16,
    "train.epochs": 1,
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return vaekit.train(tiny_config(**SMALL), out=tmp_path_factory.mktemp("kl") / "run")


def test_the_latent_is_a_feature_map_downsampled_by_the_block_count():
    model = create_model(tiny_config(**SMALL))
    assert model.latent_shape == (4, 8, 8)
    four = create_model(tiny_config(**{**SMALL, "model.autoencoder_kl.block_out_channels": [8, 8, 8, 8]}))
    assert four.latent_shape == (4, 2, 2)  # f = 8


def test_export_to_diffusers_decodes_the_same_latents_to_the_same_images(run, tmp_path):
    model = vaekit.load(run)
    scaling = model.info["latent_scaling"]
    assert scaling["scaling_factor"] > 0 and scaling["scaling_factor"] != 1.0
    from vaekit.export import export

    old = os.umask(0o022)
    try:
        files = export(model, tmp_path / "vae", "diffusers")
    finally:
        os.umask(old)
    assert [stat.S_IMODE(path.stat().st_mode) for path in files] == [0o644, 0o644]  # diffusers alone writes 0600
    theirs = diffusers.AutoencoderKL.from_pretrained(str(tmp_path / "vae")).eval()
    assert theirs.config.scaling_factor == pytest.approx(scaling["scaling_factor"])
    assert len(theirs.config.latents_mean) == model.latent_shape[0]  # per-channel statistics, as SDXL carries
    assert list(theirs.config.latents_std) == pytest.approx(scaling["latents_std"])
    z = torch.randn(3, *model.latent_shape)
    with torch.no_grad():
        images = (theirs.decode(z).sample / 2 + 0.5).clamp(0, 1)  # how diffusers users read the output
    torch.testing.assert_close(images, model.decode_images(z), rtol=1e-5, atol=1e-5)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(theirs.encode(x * 2 - 1).latent_dist.mean, model.embed(x), rtol=1e-5, atol=1e-5)


def test_a_diffusers_folder_loads_as_a_vaekit_model_and_initialises_training(run, tmp_path):
    from vaekit.export import export

    export(vaekit.load(run), tmp_path / "vae", "diffusers")
    loaded = vaekit.load(tmp_path / "vae")
    original = vaekit.load(run)
    z = torch.randn(2, *original.latent_shape)
    torch.testing.assert_close(loaded.decode_images(z), original.decode_images(z))
    assert loaded.generate(2).shape == (2, 3, 16, 16)
    tuned = vaekit.train(
        data=np.random.default_rng(0).integers(0, 256, (32, 16, 16, 3), dtype=np.uint8),
        init=tmp_path / "vae",
        out=tmp_path / "tuned",
        overrides=["train.max_steps=2", "train.batch_size=16", "train.trainable=decoder"],
    )
    after = vaekit.load(tuned)
    before = loaded.state_dict()
    for key, value in after.state_dict().items():  # decoder-only: the encoder is bit-identical
        if key.startswith(("encoder.", "decoder.")) and value.dim() > 1:
            assert torch.equal(value, before[key]) == key.startswith("encoder."), key


def test_tiled_reconstruction_of_an_image_several_times_the_training_size(run):
    model = vaekit.load(run)
    image = torch.rand(3, 53, 70)
    out = vaekit.api.reconstruct_full_size(model, image)
    assert out.shape == (3, 53, 70) and out.min() >= 0 and out.max() <= 1
    tile = torch.rand(3, 16, 16)  # one tile: exactly the plain reconstruction
    torch.testing.assert_close(vaekit.api.reconstruct_full_size(model, tile), model.reconstruct(tile[None])[0])


def test_gradient_checkpointing_gives_the_same_gradients():
    config = tiny_config(**SMALL)
    torch.manual_seed(0)
    plain = create_model(config)
    checkpointed = create_model(config)
    checkpointed.load_state_dict(plain.state_dict())
    checkpointed.set_gradient_checkpointing(True)
    x = torch.rand(2, 3, 16, 16)
    grads = []
    for model in (plain, checkpointed):
        model.train()
        mean, _ = model.encoder(x)
        model.decoder(mean).square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-7)


def test_the_mid_block_attention_runs_as_torch_scaled_dot_product_attention():
    model = create_model(tiny_config(**SMALL))
    processors = {type(p).__name__ for p in model._diffusers[0].attn_processors.values()}
    assert processors == {"AttnProcessor2_0"}  # diffusers' SDPA processor: flash / memory-efficient kernels on GPUs


@pytest.fixture(scope="module")
def vq_run(tmp_path_factory):
    pytest.importorskip("vector_quantize_pytorch")
    settings = {**SMALL, "model.latent": "vq", "model.vq.codebook_size": 16}
    return vaekit.train(tiny_config(**settings), out=tmp_path_factory.mktemp("vq") / "run")


def test_a_vector_quantized_autoencoder_exports_as_a_vqmodel_that_decodes_its_codes_exactly(vq_run, tmp_path):
    from vaekit.export import export

    model = vaekit.load(vq_run)
    export(model, tmp_path / "vq", "diffusers")
    theirs = diffusers.VQModel.from_pretrained(str(tmp_path / "vq")).eval()
    assert theirs.config.num_vq_embeddings == 16 and theirs.config.scaling_factor > 0
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    tokens = model.tokenize(x)
    z = model.bottleneck.detokenize(tokens)
    with torch.no_grad():
        assert torch.equal(theirs.encode(x * 2 - 1).latents, model.encoder(x * 2 - 1)[0])  # before quantizing
        codes, _, (_, _, indices) = theirs.quantize(z)
        assert torch.equal(indices.view(tokens.shape), tokens) and torch.equal(codes, z)
        decoded = theirs.decode(z, force_not_quantize=True).sample
    assert torch.equal(decoded, model.decode(z))
    back = vaekit.load(tmp_path / "vq")  # and back: the same tokens, the same reconstructions
    assert back.config.model.latent == "vq" and torch.equal(back.tokenize(x), tokens)
    assert torch.equal(back.reconstruct(x), model.reconstruct(x))


def test_a_quantizer_a_vqmodel_cannot_hold_is_refused_in_one_line(tmp_path):
    pytest.importorskip("vector_quantize_pytorch")
    from vaekit.config import ConfigError
    from vaekit.export import export

    model = create_model(tiny_config(**SMALL, **{"model.latent": "fsq", "model.fsq.levels": [5, 3]}))
    model.info = {"latent_scaling": {"scaling_factor": 1.0}}
    with pytest.raises(ConfigError, match="a VQModel holds one Euclidean codebook") as refused:
        export(model, tmp_path / "fsq", "diffusers")
    assert "\n" not in str(refused.value) and not (tmp_path / "fsq").exists()


@pytest.mark.parametrize(
    "kind", ["AutoencoderKLWan", "AutoencoderKLCosmos", "ConsistencyDecoderVAE", "AutoencoderOobleck"]
)
def test_a_diffusers_folder_of_a_class_vaekit_cannot_train_whole_is_refused_not_misread(kind, tmp_path):
    from vaekit.config import ConfigError

    folder = tmp_path / "vae"
    model = diffusers.AutoencoderKL(block_out_channels=(8,), norm_num_groups=8, latent_channels=4)
    model.save_pretrained(str(folder))  # weights beside a config naming another class, as an --init would see
    config = (folder / "config.json").read_text().replace('"AutoencoderKL"', f'"{kind}"')
    (folder / "config.json").write_text(config)
    for attempt in (lambda: vaekit.load(folder), lambda: vaekit.train(tiny_config(), init=folder, out=tmp_path / "r")):
        with pytest.raises(ConfigError, match=f"a diffusers {kind}; vaekit reads and trains") as refused:
            attempt()
        assert "\n" not in str(refused.value)
    assert not (tmp_path / "r").exists()


def test_a_deeply_nested_diffusers_config_is_one_line_naming_it(tmp_path):
    from vaekit.config import ConfigError

    (tmp_path / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"config\.json: not a readable diffusers config") as refused:
        vaekit.load(tmp_path)
    assert "\n" not in str(refused.value)
