import pytest

from vaekit.config import TrainConfig
from vaekit.engine.lr_schedule import lr_factor


def test_multistep_counts_epochs():
    train = TrainConfig(lr_schedule="multistep", lr_milestones=[2, 4], lr_gamma=0.1)
    assert [lr_factor(train, s, 10) for s in (0, 19, 20, 45)] == pytest.approx([1, 1, 0.1, 0.01])


def test_exponential_per_epoch():
    assert lr_factor(TrainConfig(lr_schedule="exponential", lr_gamma=0.5), 25, 10) == 0.25


def test_cosine_anneals_to_zero_over_max_steps():
    train = TrainConfig(lr_schedule="cosine", max_steps=100)
    assert lr_factor(train, 0, 10) == 1 and lr_factor(train, 50, 10) == pytest.approx(0.5)
    assert lr_factor(train, 100, 10) == pytest.approx(0)


def test_unknown_schedule():
    with pytest.raises(ValueError, match=r"train\.lr_schedule: unknown learning-rate schedule"):
        lr_factor(TrainConfig(lr_schedule="warmup"), 0, 1)
