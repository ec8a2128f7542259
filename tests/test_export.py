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
