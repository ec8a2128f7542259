"""Exported encoder and decoder files compute what the PyTorch model computes."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import torch

from tests.helpers import tiny_config
from vaekit.export import export
from vaekit.models import create_model
from vaekit.models.latents import LATENTS


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model(tiny_config(**{"likelihood.output": "tanh"})).eval()


def test_onnx_files_match_the_model_to_1e_4_for_any_batch(model, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    encoder_file, decoder_file = export(model, tmp_path, "onnx")
    assert "encoder" in encoder_file.name and "decoder" in decoder_file.name
    images = torch.rand(5, *model.image_shape)
    mean, logvar = ort.InferenceSession(str(encoder_file)).run(None, {"images": images.numpy()})
    posterior = model.encode(model.likelihood.prepare(images))
    np.testing.assert_allclose(mean, posterior.mean.detach().numpy(), atol=1e-4)
    np.testing.assert_allclose(logvar, posterior.logvar.detach().numpy(), atol=1e-4)
    z = torch.randn(7, *model.latent_shape)
    (decoded,) = ort.InferenceSession(str(decoder_file)).run(None, {"latents": z.numpy()})
    np.testing.assert_allclose(decoded, model.to_image(z).numpy(), atol=1e-4)
    assert decoded.min() >= 0 and decoded.max() <= 1


def test_torchscript_files_load_without_vaekit_and_match(model, tmp_path):
    _, decoder_file = export(model, tmp_path, "torchscript")
    decoder = torch.jit.load(str(decoder_file))
    z = torch.randn(3, *model.latent_shape)
    torch.testing.assert_close(decoder(z), model.to_image(z), atol=1e-5, rtol=1e-5)


def test_an_unknown_format_is_one_clear_line(model, tmp_path):
    with pytest.raises(ValueError, match="use one of onnx, torchscript"):
        export(model, tmp_path, "tflite")


def test_a_refused_export_leaves_no_folder_and_written_files_follow_the_umask(model, tmp_path):
    with pytest.raises(ValueError, match=r"model\.arch conv cannot be written as diffusers; use onnx or torchscript"):
        export(model, tmp_path / "refused", "diffusers")  # a conv VAE has no diffusers form
    assert not (tmp_path / "refused").exists()
    old = os.umask(0o022)
    try:
        written = export(model, tmp_path / "files", "torchscript")
    finally:
        os.umask(old)
    assert [stat.S_IMODE(path.stat().st_mode) for path in written] == [0o644, 0o644]
    assert stat.S_IMODE((tmp_path / "files").stat().st_mode) == 0o755


def test_a_diffusers_export_uses_the_scaling_it_is_given_over_the_model_cards(tmp_path):
    import json

    pytest.importorskip("diffusers")
    from vaekit.export import export_diffusers
    from vaekit.models import ARCHITECTURES

    model = create_model(tiny_config(**{"model.arch": "autoencoder-kl", **ARCHITECTURES.get("autoencoder-kl").tiny}))
    model.info = {"latent_scaling": {"scaling_factor": 2.0, "shift_factor": 0.1}}
    export_diffusers(model, tmp_path / "given", {"scaling_factor": 3.0, "shift_factor": 0.2})
    given = json.loads((tmp_path / "given" / "config.json").read_text())
    assert (given["scaling_factor"], given["shift_factor"]) == (3.0, 0.2)
    export_diffusers(model, tmp_path / "card")
    assert json.loads((tmp_path / "card" / "config.json").read_text())["scaling_factor"] == 2.0


TOKENIZERS = [
    pytest.param({"model.latent": "vq", "model.vq.restart_threshold": 0.5}, id="vq"),
    pytest.param({"model.latent": "residual-vq"}, id="residual-vq"),
    pytest.param({"model.latent": "lfq"}, id="lfq"),
    pytest.param({"model.latent": "fsq", "model.fsq.whiten": True}, id="fsq-whitened"),
]


@pytest.mark.parametrize("settings", TOKENIZERS)
def test_a_trained_tokenizers_exported_encoders_give_its_tokens_for_any_batch(settings, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("vector_quantize_pytorch")
    latent = settings["model.latent"]
    model = create_model(tiny_config(**LATENTS.get(latent).tiny, **settings))
    images = torch.rand(5, *model.image_shape, generator=torch.Generator().manual_seed(0))
    for _ in range(2):  # training leaves what an export must cope with (statistics, the library's buffers)
        model.encode(model.likelihood.prepare(images))
    model.eval()
    tokens = model.tokenize(images).numpy()  # 5 images: the export traced 2
    (onnx_tokens,) = ort.InferenceSession(str(export(model, tmp_path / "onnx", "onnx")[0])).run(
        None, {"images": images.numpy()}
    )
    np.testing.assert_array_equal(onnx_tokens, tokens)
    script = torch.jit.load(str(export(model, tmp_path / "torchscript", "torchscript")[0]))
    np.testing.assert_array_equal(script(images).numpy(), tokens)


def test_export_gives_the_model_back_in_its_own_mode(model, tmp_path):
    model.train()
    export(model, tmp_path / "a", "torchscript")
    assert model.training and all(module.training for module in model.modules())
    model.eval()
    export(model, tmp_path / "b", "torchscript")
    assert not any(module.training for module in model.modules())
