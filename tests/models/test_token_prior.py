"""The autoregressive token prior: it learns the grids' structure, saves and loads exactly, and
refuses damaged files and tokenizers it was not fitted for."""

from __future__ import annotations

import math

import pytest
import torch

from vaekit.models.token_prior import TokenPrior


def _patterned(n: int = 400, codes: int = 8, length: int = 6) -> torch.Tensor:
    """Grids whose every token repeats the first one: p(rest | first) = 1."""
    first = torch.randint(codes, (n, 1), generator=torch.Generator().manual_seed(0))
    return first.expand(n, length).reshape(n, 2, 3).clone()


def test_the_prior_learns_that_the_later_tokens_repeat_the_first():
    tokens = _patterned()
    prior = TokenPrior.fit(tokens, codes=8, latent_shape=(12,), steps=120, max_time=60)
    assert prior.meta["held_out_nats_per_token"] < 0.5 * math.log(8)  # uniform: log 8 per token
    drawn = prior.draw_tokens(64, generator=torch.Generator().manual_seed(1)).flatten(1)
    assert drawn.shape == (64, 6)
    repeats = (drawn == drawn[:, :1]).all(1).float().mean()
    assert repeats > 0.9


def test_a_saved_prior_loads_and_draws_the_same_grids(tmp_path):
    prior = TokenPrior.fit(_patterned(60), codes=8, latent_shape=(12,), steps=5)
    prior.save(tmp_path)
    again = TokenPrior.load(tmp_path)
    seed = torch.Generator().manual_seed
    assert torch.equal(prior.draw_tokens(4, generator=seed(3)), again.draw_tokens(4, generator=seed(3)))
    assert again.token_grid == (2, 3) and again.latent_shape == (12,)


def test_a_damaged_prior_file_is_refused_in_one_line(tmp_path):
    prior = TokenPrior.fit(_patterned(60), codes=8, latent_shape=(12,), steps=1)
    path = prior.save(tmp_path)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(Exception) as refused:
        TokenPrior.load(tmp_path)
    assert "\n" not in str(refused.value)


def test_attaching_to_a_tokenizer_of_another_grid_is_refused():
    from tests.helpers import tiny_config
    from vaekit.models import create_model

    pytest.importorskip("vector_quantize_pytorch")
    model = create_model(tiny_config(**{"model.latent": "vq", "model.vq.codebook_size": 8, "model.vq.token_dim": 2}))
    prior = TokenPrior.fit(_patterned(60), codes=8, latent_shape=(12,), steps=1)
    with pytest.raises(ValueError, match="the prior draws 8 codes on a"):
        prior.attach(model)
