from vaekit.noise import step_seed


def test_each_step_draws_its_own_noise_seed():
    seeds = {step_seed(0, step) for step in range(100)}
    assert len(seeds) == 100 and step_seed(0, 5) == step_seed(0, 5) and step_seed(0, 5) != step_seed(1, 5)


def test_a_shard_of_the_batch_draws_exactly_its_rows_of_the_whole_batchs_noise():
    import torch

    from vaekit import noise

    with noise.batch_shard(seed=7):
        whole = noise.randn(8, 3)
    parts = []
    for index in range(4):
        with noise.batch_shard(seed=7, index=index, count=4):
            parts.append(noise.randn(2, 3))
    assert torch.equal(torch.cat(parts), whole)  # 4 micro-batches or ranks of 2 = 1 batch of 8
    with noise.batch_shard(seed=8):
        assert not torch.equal(noise.randn(8, 3), whole)  # another step's seed, other noise
    with noise.batch_shard(seed=7, index=1, count=4):
        assert not torch.equal(noise.rand_like(torch.empty(2, 3)), parts[1])  # uniform is its own draw


def test_a_shard_outside_the_batch_is_refused():
    import pytest

    from vaekit import noise

    for index, count in ((4, 4), (-1, 4)):
        with pytest.raises(ValueError, match="does not exist"), noise.batch_shard(seed=0, index=index, count=count):
            pass
