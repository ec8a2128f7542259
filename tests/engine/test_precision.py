import pytest
import torch

from vaekit.engine.precision import Precision


def test_the_micro_batch_comes_with_each_call_so_two_callers_never_share_it():
    weight = torch.nn.Parameter(torch.ones(1))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    precision = Precision("fp32", torch.device("cpu"), accumulate=2)
    precision.minimize((2 * weight).sum(), optimizer, [weight], micro_batch=0)
    assert weight.item() == 1.0 and weight.grad.item() == 1.0  # halved, kept for the next micro-batch
    precision.minimize((4 * weight).sum(), optimizer, [weight], micro_batch=1)
    assert weight.item() == 1.0 - 3.0  # the mean gradient of both micro-batches, one step
    assert weight.grad is None  # freed after the step
    assert not hasattr(precision, "micro_batch")


def test_an_update_in_micro_batches_reports_the_mean_of_their_metrics():
    from vaekit.engine.step import StepInfo, update

    class Reports:
        def step(self, batch, info):
            return {"loss": batch.mean()}

    precision = Precision("fp32", torch.device("cpu"), accumulate=2)
    batch = torch.tensor([[1.0], [3.0]])  # micro-batches of 1.0 and 3.0
    assert update(Reports(), precision, batch, StepInfo(0, 0.0), seed=0)["loss"].item() == 2.0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("clip", [None, 1.0], ids=["unclipped", "clipped"])
def test_an_update_whose_gradient_is_not_finite_is_dropped_and_the_weights_stay(bad, clip):
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    precision = Precision("fp32", torch.device("cpu"), clip, skip_nonfinite=True)
    loss = (weight * torch.tensor([1.0, bad, 1.0])).sum()  # d loss / d weight[1] is bad
    precision.minimize(loss, optimizer, [weight])
    assert precision.skipped == 1 and torch.equal(weight.detach(), torch.ones(3))
    precision.minimize((weight * 2).sum(), optimizer, [weight])  # a finite one goes through
    assert precision.skipped == 1 and (weight.detach() < 1).all()


def test_ddp_communicates_on_the_last_micro_batch_of_an_update_only():
    import contextlib

    class Replica:
        def __init__(self):
            self.module = torch.nn.Linear(2, 2)
            self.silenced = 0

        @contextlib.contextmanager
        def no_sync(self):
            self.silenced += 1
            yield

    precision = Precision("fp32", torch.device("cpu"), accumulate=3)
    replica = Replica()
    precision.sync_with(replica)
    talked = []
    for micro_batch in range(3):
        before = replica.silenced
        with precision.no_sync(micro_batch):
            pass
        talked.append(replica.silenced == before)
    assert talked == [False, False, True]  # gradients are all-reduced once, after the last backward
    alone = Precision("fp32", torch.device("cpu"), accumulate=3)
    with alone.no_sync(0):  # one process: nothing to hold back
        pass
