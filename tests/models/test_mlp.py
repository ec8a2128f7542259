"""Fully connected networks for vector data."""

import torch

import vaekit
from vaekit.models.mlp import MLPDecoder, MLPEncoder


def test_the_default_shapes_are_those_of_the_2d_experiments():
    encoder, decoder = MLPEncoder(), MLPDecoder()
    linear = [m for m in encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(2, 256), (256, 256), (256, 256), (256, 256), (256, 4)]
    mean, logvar = encoder(torch.randn(5, 2))
    assert mean.shape == logvar.shape == (5, 2)
    assert decoder(torch.randn(5, 2)).shape == (5, 2)


def test_they_make_a_vaekit_model_that_reloads_from_its_class_paths(tmp_path):
    points = torch.randn(256, 3)
    model = vaekit.VAE.from_modules(
        MLPEncoder(3, 2, 16, 1),
        MLPDecoder(2, 3, 16, 1),
        latent_shape=2,
        likelihood="gaussian",
        output="identity",
        encoder_args={"inputs": 3, "latent": 2, "hidden": 16, "layers": 1},
        decoder_args={"latent": 2, "outputs": 3, "hidden": 16, "layers": 1},
    )
    run = vaekit.train(data=points, model=model, out=tmp_path / "run", overrides=["train.epochs=1"])
    again = vaekit.load(run, trust_code=True)
    x = torch.randn(4, 3)
    assert torch.equal(again.encode(x).mean, model.eval().encode(x).mean)
