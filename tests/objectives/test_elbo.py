import pytest
import torch

from tests.helpers import tiny_config
from vaekit.engine.precision import Precision
from vaekit.models import create_model
from vaekit.objectives import StepInfo, create_objective


def _objective(**overrides):
    config = tiny_config(**overrides)
    torch.manual_seed(0)
    model = create_model(config)
    return create_objective(model, config, Precision("fp32", torch.device("cpu"))), model


def test_step_reports_the_bound_and_updates_the_model():
    objective, model = _objective()
    before = [p.detach().clone() for p in model.parameters()]
    scalars = objective.step(torch.rand(8, 3, 16, 16), StepInfo(0, 0.0))
    assert set(scalars) == set(objective.metric_names)
    torch.testing.assert_close(scalars["neg_elbo"], scalars["nll"] + scalars["kl"])
    torch.testing.assert_close(scalars["loss"], scalars["neg_elbo"])  # weight 1, no free bits
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_kl_weight_changes_the_loss_not_the_bound():
    objective, _ = _objective(**{"objective.kl.weight": 0.0})
    scalars = objective.step(torch.rand(8, 3, 16, 16), StepInfo(0, 0.0))
    torch.testing.assert_close(scalars["loss"], scalars["nll"])
    assert scalars["kl_weight"].item() == 0.0


def test_loss_decreases_on_a_fixed_batch():
    objective, _ = _objective(**{"train.lr": 3e-3})
    batch = torch.rand(16, 3, 16, 16)
    first = objective.step(batch, StepInfo(0, 0.0))["loss"].item()
    for step in range(1, 40):
        last = objective.step(batch, StepInfo(step, 0.0))["loss"].item()
    assert last < first


def test_the_one_over_batch_weight_uses_the_whole_update_not_this_micro_batch():
    config = tiny_config(**{"objective.kl.schedule": "inverse_batch"})
    model = create_model(config)
    objective = create_objective(model, config, Precision("fp32", torch.device("cpu")))
    scalars = objective.step(torch.rand(8, 3, 16, 16), StepInfo(step=0, epoch=0.0, total_steps=10, batch_size=64))
    assert scalars["kl_weight"].item() == pytest.approx(1 / 64)
    scalars = objective.step(torch.rand(8, 3, 16, 16), StepInfo(step=1, epoch=0.0, total_steps=10))
    assert scalars["kl_weight"].item() == pytest.approx(1 / 8)  # no global size given: the batch itself


def test_the_reported_bound_is_nll_plus_the_whole_kl_whatever_the_weight():
    objective, _ = _objective(**{"objective.kl.weight": 0.5})
    scalars = objective.step(torch.rand(8, 3, 16, 16), StepInfo(0, 0.0))
    assert scalars["kl"] > 0
    torch.testing.assert_close(scalars["neg_elbo"], scalars["nll"] + scalars["kl"])
    torch.testing.assert_close(scalars["loss"], scalars["nll"] + 0.5 * scalars["kl"])
