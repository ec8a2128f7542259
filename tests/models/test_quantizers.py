"""Quantized latents: tokens that decode to exactly the reconstruction, the ELBO of a one-hot
posterior, codebook health that counts what it says, and refusals where a feature needs a Gaussian."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

import vaekit
from tests.helpers import correlated_tokens
from vaekit.config import Config, ConfigError
from vaekit.engine.precision import Precision
from vaekit.engine.step import StepInfo
from vaekit.models import create_model
from vaekit.models.latents import LATENTS
from vaekit.models.quantizers import CodebookHealth, TokenLayout, perplexity

pytest.importorskip("vector_quantize_pytorch")

QUANTIZERS = [entry.name for entry in LATENTS if entry.has("tokens")]
ARCHES = {
    "conv": {"model.channels": [4, 8]},
    "spatial": {"model.spatial.latent_channels": 4, "model.spatial.residual_blocks": 1},
    "autoencoder-kl": {
        "model.autoencoder_kl.block_out_channels": [8, 8],
        "model.autoencoder_kl.layers_per_block": 1,
        "model.autoencoder_kl.latent_channels": 4,
        "model.autoencoder_kl.norm_num_groups": 4,
    },
}


def _model(latent: str, arch: str = "conv", **settings):
    overrides = {
        "model.arch": arch,
        "model.latent": latent,
        "model.latent_dim": 8,
        "data.image_size": 16,
        "likelihood.name": "gaussian",
        **ARCHES[arch],
        **LATENTS.get(latent).tiny,
        **settings,
    }
    overrides["model.latent_dim"] = 8
    torch.manual_seed(0)
    return create_model(Config().with_overrides(overrides))


def _images(n: int = 6) -> torch.Tensor:
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(1))


DECODED = [(latent, "conv") for latent in QUANTIZERS] + [("vq", "spatial"), ("fsq", "autoencoder-kl")]


@pytest.mark.parametrize(("latent", "arch"), DECODED)  # every quantizer; each layout of tokens
def test_decoding_an_images_tokens_gives_exactly_its_reconstruction(latent, arch):
    model = _model(latent, arch).eval()
    images = _images()
    tokens = model.tokenize(images)
    assert tokens.dtype == torch.int64 and tokens.shape == (6, *model.bottleneck.token_grid)
    assert int(tokens.min()) >= 0 and int(tokens.max()) < model.bottleneck.codebook_size
    assert torch.equal(model.detokenize(tokens), model.reconstruct(images))


def test_a_flat_latent_is_cut_into_tokens_of_token_dim_and_a_map_into_one_token_per_position():
    flat, spatial = TokenLayout((12,), 4, "model.vq"), TokenLayout((5, 3, 2), 4, "model.vq")
    assert (flat.grid, flat.width, spatial.grid, spatial.width) == ((3,), 4, (3, 2), 5)
    z = torch.arange(2 * 5 * 3 * 2, dtype=torch.float32).view(2, 5, 3, 2)
    tokens = spatial.to_tokens(z)
    assert torch.equal(tokens[1, 4], z[1, :, 2, 0])  # position (2, 0) is token 2 * 2 + 0, its channels
    assert torch.equal(spatial.from_tokens(tokens), z)
    with pytest.raises(ConfigError, match="token_dim: 5 does not divide"):
        TokenLayout((12,), 5, "model.vq")


@pytest.mark.parametrize("latent", QUANTIZERS)
def test_the_kl_of_a_one_hot_posterior_under_uniform_codes_is_log_k_per_token(latent):
    model = _model(latent)
    posterior = model.encode(model.likelihood.prepare(_images(3)))
    bottleneck = model.bottleneck
    tokens, depth = math.prod(bottleneck.layout.grid), bottleneck.depth
    expected = tokens * depth * math.log(bottleneck.codebook_size)
    torch.testing.assert_close(posterior.kl(), torch.full((3,), expected))


@pytest.mark.parametrize("latent", ["vq", "lfq", "residual-vq"])
def test_the_elbo_step_adds_the_quantizers_own_loss_to_the_bound(latent):
    from vaekit.objectives import create_objective

    model = _model(latent, **{"model.vq.commitment_weight": 5.0})
    config = model.config.with_overrides({"objective.kl.weight": 0.5})
    objective = create_objective(model, config, Precision("fp32", torch.device("cpu")))
    torch.manual_seed(0)
    logs = objective.step(_images(4), StepInfo(step=0, epoch=0.0, batch_size=4))
    assert float(logs["quantizer_loss"]) > 0
    expected = logs["nll"] + 0.5 * logs["kl"] + logs["quantizer_loss"]
    torch.testing.assert_close(logs["loss"], expected)
    torch.testing.assert_close(logs["neg_elbo"], logs["nll"] + logs["kl"])


def test_usage_counts_the_codes_chosen_within_the_window_and_the_rest_are_dead():
    health = CodebookHealth(codes=6, window=2)
    for codes in ([0, 1, 1], [2], [2, 3]):
        health.update(torch.tensor(codes))
    assert int(health.used()) == 2  # 2 and 3: 0 and 1 were last seen three steps back
    health.update(torch.tensor([5]))
    assert int(health.used()) == 3  # the window holds steps 3 and 4: 2, 3 and 5
    assert int(health.steps) == 4


def test_perplexity_is_the_number_of_equally_used_codes():
    assert float(perplexity(torch.tensor([5, 5, 5, 5, 0]))) == pytest.approx(4.0)
    assert float(perplexity(torch.tensor([9, 0, 0]))) == pytest.approx(1.0)
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert float(perplexity(torch.tensor([1, 3]))) == pytest.approx(math.exp(entropy))


def test_the_logged_health_reports_usage_dead_codes_and_perplexity_of_the_step():
    model = _model("vq", **{"model.vq.codebook_size": 8}).train()
    posterior = model.encode(model.likelihood.prepare(_images(4)))
    logs = posterior.logs()
    used = len(torch.unique(posterior.indices))
    assert float(logs["code_usage"]) == used / 8 and float(logs["dead_codes"]) == 8 - used
    counts = torch.bincount(posterior.indices.flatten(), minlength=8)
    torch.testing.assert_close(logs["perplexity"], perplexity(counts))


def test_dead_codes_are_restarted_from_the_batch_and_counted():
    model = _model("vq", **{"model.vq.codebook_size": 8, "model.vq.restart_threshold": 0.5}).train()
    codebook = model.bottleneck.quantizer._codebook
    with torch.no_grad():
        codebook.embed.fill_(100.0)  # every code far from the data: one wins, the rest starve
        codebook.embed[0, 0] = 0.0
    images = _images(8)
    for _ in range(3):
        model.encode(model.likelihood.prepare(images))
    restarts = int(model.bottleneck.restarts())
    assert restarts > 0
    assert int(model.state_dict()["bottleneck.quantizer._codebook.vaekit_restarts"]) == restarts
    assert float(codebook.embed.abs().max()) < 100.0 or (codebook.embed < 50).any()


def test_a_copied_model_counts_its_own_restarts():
    import copy

    model = _model("vq", **{"model.vq.restart_threshold": 0.5}).train()
    twin = copy.deepcopy(model)
    codebook = twin.bottleneck.quantizer._codebook
    assert codebook.replace.__self__ is codebook  # the bound counter follows the copy


def test_the_uniform_prior_draws_codes_and_decodes_them():
    model = _model("fsq").eval()
    z = model.prior_sample(5, generator=torch.Generator().manual_seed(0))
    assert z.shape == (5, *model.latent_shape)
    tokens = model.bottleneck.layout.to_tokens(z)
    again = model.bottleneck.detokenize(model.bottleneck._quantize(tokens)[1].long().view(5, -1))
    assert torch.equal(again, z)  # every drawn latent is a code


def test_a_gaussian_model_keeps_its_state_dict_keys():
    model = _model("gaussian")
    assert not any(key.startswith("bottleneck.") for key in model.state_dict())


def test_objectives_that_need_a_gaussian_refuse_a_quantized_latent_in_one_line():
    with pytest.raises(ConfigError) as refused:
        Config().with_overrides({"model.latent": "vq", "objective.name": "soft-intro"})
    assert "needs a Gaussian latent" in str(refused.value) and "\n" not in str(refused.value)


def test_an_architecture_with_a_gaussian_head_only_refuses_other_latent_kinds():
    with pytest.raises(ConfigError, match="builds a Gaussian latent only"):
        create_model(Config().with_overrides({"model.arch": "toy-linear", "model.latent": "vq"}))


def test_tokens_outside_the_codebook_or_of_the_wrong_shape_are_refused():
    model = _model("vq")
    grid = model.bottleneck.token_grid
    with pytest.raises(ValueError, match="token values must lie in"):
        model.detokenize(torch.full((1, *grid), 10_000))
    with pytest.raises(ValueError, match="tokens shaped"):
        model.detokenize(torch.zeros(1, 99, dtype=torch.long))


def test_tokenize_refuses_a_gaussian_model_in_one_line():
    with pytest.raises(ConfigError, match="tokenize needs a latent kind with tokens"):
        _model("gaussian").tokenize(_images(1))


def _straight_and_resumed(tmp_path, **latent) -> tuple[dict, dict]:
    """The weights of a 6-step run, and of the same run stopped after 3 steps and resumed."""
    settings = {
        "data.num_images": 48,
        "data.image_size": 8,
        "model.channels": [4, 8],
        "model.latent_dim": 8,
        "likelihood.name": "gaussian",
        "train.batch_size": 8,
        "train.max_steps": 6,
        "train.checkpoint_every": 3,
        "train.threads": 1,
        "train.fit_sampler": False,
        **latent,
    }
    overrides = [f"{key}={json.dumps(value)}" for key, value in settings.items()]
    straight = vaekit.train(out=tmp_path / "straight", overrides=overrides)
    half = vaekit.train(out=tmp_path / "half", overrides=[*overrides, "train.max_steps=3"])
    resumed = vaekit.train(resume=half, overrides=["train.max_steps=6"])
    reference, weights = (load_file(run / "model" / "model.safetensors") for run in (straight, resumed))
    assert weights.keys() == reference.keys()
    assert all(torch.equal(weights[key], reference[key]) for key in reference)
    return reference, weights


def test_a_run_with_kmeans_ema_and_restarts_resumes_bit_identically(tmp_path):
    reference, _ = _straight_and_resumed(
        tmp_path,
        **{
            "model.latent": "vq",
            "model.vq.codebook_size": 32,
            "model.vq.kmeans_init": True,
            "model.vq.restart_threshold": 0.5,
        },
    )
    restarts = "bottleneck.quantizer._codebook.vaekit_restarts"
    assert int(reference[restarts]) > 0 and bool(reference["bottleneck.quantizer._codebook.initted"])
    assert int(reference["bottleneck.health.steps"]) == 6


def test_a_whitened_fsq_run_resumes_bit_identically_with_its_running_statistics(tmp_path):
    whitened = {"model.latent": "fsq", "model.fsq.levels": [5, 3], "model.fsq.token_dim": 2, "model.fsq.whiten": True}
    reference, _ = _straight_and_resumed(tmp_path, **whitened)
    assert not torch.equal(reference["bottleneck.whitening.running_covariance"], torch.eye(2))


def test_the_quantizers_loss_is_summed_per_sample_like_the_nll():
    """The library's commitment loss is a mean over latent elements; vaekit's NLL is a sum per image,
    so the loss is summed too, or beta would shrink as the latent grows."""
    for arch in ("conv", "spatial"):
        model = _model("vq", arch, **{"model.vq.ema": False}).train()
        z = model.encoder(model.likelihood.prepare(_images(4)))[0]
        _, _, mean_loss = model.bottleneck._quantize(model.bottleneck.layout.to_tokens(z))
        summed = model.bottleneck.posterior(z).auxiliary_loss
        torch.testing.assert_close(summed, mean_loss * math.prod(model.latent_shape))  # elements per sample


def test_a_whitened_grid_reaches_the_codes_that_correlated_channels_miss():
    levels = {"model.fsq.levels": [5, 5, 5, 5], "model.fsq.token_dim": 4, "model.latent_dim": 4}
    used = {}
    for whiten in (False, True):
        model = _model("fsq", **levels, **{"model.fsq.whiten": whiten}).train()
        _, indices, _ = model.bottleneck._quantize(correlated_tokens(4000))
        used[whiten] = indices.unique().numel()
    assert used[False] < 0.1 * 625 and used[True] > 0.5 * 625  # 625 codes: a diagonal against the grid


def test_a_whitened_fsq_decodes_its_tokens_to_its_reconstruction_and_keeps_its_statistics():
    model = _model("fsq", **{"model.fsq.whiten": True}).train()
    for _ in range(3):
        model.encode(model.likelihood.prepare(_images()))
    state = model.state_dict()
    assert not torch.equal(state["bottleneck.whitening.running_covariance"], torch.eye(2))
    model.eval()
    images = _images()
    assert torch.equal(model.detokenize(model.tokenize(images)), model.reconstruct(images))
    twin = _model("fsq", **{"model.fsq.whiten": True}).eval()
    twin.load_state_dict(state)  # loading remakes the eval matrix (an export traced next multiplies by it)
    assert torch.equal(twin.bottleneck.whitening.matrix, model.bottleneck.whitening.matrix)
    assert torch.equal(twin.tokenize(images), model.tokenize(images))


def test_fsq_noise_and_two_levels_need_symmetric_levels():
    with pytest.raises(ConfigError, match=r"noise_dropout: needs model\.fsq\.symmetric"):
        _model("fsq", **{"model.fsq.noise_dropout": 0.5})
    with pytest.raises(ConfigError, match=r"2 levels need model\.fsq\.symmetric"):
        _model("fsq", **{"model.fsq.levels": [2, 3]})
    symmetric = _model("fsq", **{"model.fsq.levels": [2, 3], "model.fsq.symmetric": True}).eval()
    images = _images()
    assert torch.equal(symmetric.detokenize(symmetric.tokenize(images)), symmetric.reconstruct(images))
    noisy = _model("fsq", **{"model.fsq.symmetric": True, "model.fsq.noise_dropout": 1.0})
    x = noisy.likelihood.prepare(images)
    assert torch.equal(noisy.eval().encode(x).sample(), noisy.encode(x).mean)  # no noise after training
    assert not torch.equal(noisy.train().encode(x).sample(), noisy.encode(x).mean)  # noise in training


def test_lfq_tokens_narrower_than_its_sign_bits_warn_with_the_codes_they_can_reach():
    with pytest.warns(UserWarning, match=r"width 2 are projected to 4 channels and reach at most 11 of 16 codes"):
        model = _model("lfq", **{"model.lfq.codebook_size": 16, "model.lfq.token_dim": 2})
    plane = torch.stack(torch.meshgrid(*[torch.linspace(-300, 300, 1500)] * 2, indexing="ij"), -1).view(1, -1, 2)
    with torch.no_grad():
        reached = model.bottleneck._quantize(plane)[1].unique().numel()
    assert reached == 11  # 4 lines in general position cut a plane into 1 + 4 + 6 regions
