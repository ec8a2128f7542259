from vaekit.noise import step_seed


def test_each_step_draws_its_own_noise_seed():
    seeds = {step_seed(0, step) for step in range(100)}
    assert len(seeds) == 100 and step_seed(0, 5) == step_seed(0, 5) and step_seed(0, 5) != step_seed(1, 5)
