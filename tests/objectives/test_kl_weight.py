import math

import pytest
import torch

from vaekit.objectives.kl_weight import KLConfig, kl_weight, penalised_kl


def test_constant():
    assert kl_weight(KLConfig(weight=2.0), step=100, epoch=3.0, batch_size=8) == 2.0


def test_linear_warmup_reaches_the_weight():
    config = KLConfig(schedule="linear", weight=1.0, warmup_steps=100)
    assert [kl_weight(config, s, 0, 8) for s in (0, 50, 100, 500)] == [0.0, 0.5, 1.0, 1.0]


def test_sigmoid_of_epoch_is_half_at_the_centre():
    config = KLConfig(schedule="sigmoid", weight=1.0, sigmoid_center=5, sigmoid_slope=2)
    assert kl_weight(config, 0, 5.0, 8) == pytest.approx(0.5)
    assert kl_weight(config, 0, 0.0, 8) == pytest.approx(1 / (1 + math.exp(10)))
    assert kl_weight(config, 0, 10.0, 8) > 0.9999


def test_inverse_batch():
    assert kl_weight(KLConfig(schedule="inverse_batch"), 0, 0, batch_size=64) == 1 / 64


def test_unknown_schedule():
    with pytest.raises(ValueError, match=r"objective\.kl\.schedule: unknown kl schedule"):
        kl_weight(KLConfig(schedule="cyclic"), 0, 0, 1)


def test_free_bits_floor_each_dimension_batch_mean():
    kl = torch.tensor([[0.1, 2.0], [0.3, 4.0]])  # batch means: 0.2 and 3.0
    assert penalised_kl(kl, 0.0).item() == pytest.approx(3.2)
    assert penalised_kl(kl, 0.5).item() == pytest.approx(3.5)


def test_free_bits_floor_the_batch_mean_not_each_sample():
    kl = torch.tensor([[0.1, 2.0], [0.9, 4.0]])  # dim 0: samples 0.1 and 0.9, batch mean 0.5
    assert penalised_kl(kl, 0.4).item() == pytest.approx(0.5 + 3.0)  # the mean clears the floor
    assert penalised_kl(kl, 0.6).item() == pytest.approx(0.6 + 3.0)
