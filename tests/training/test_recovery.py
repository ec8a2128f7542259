"""Counting dropped updates and rollbacks (train.on_nonfinite: skip): the window's edges, what a
rollback forgets and what a resume keeps."""

from __future__ import annotations

from vaekit.config import Config
from vaekit.training.recovery import NonFiniteRecovery


def _recovery(max_skipped: int = 3, window: int = 10, rollbacks: int = 2) -> NonFiniteRecovery:
    train = (
        Config()
        .with_overrides(
            {"train.max_skipped": max_skipped, "train.skip_window": window, "train.max_rollbacks": rollbacks}
        )
        .train
    )
    return NonFiniteRecovery(train)


def test_updates_dropped_within_the_window_roll_back_and_one_step_further_apart_do_not():
    inside = _recovery()
    assert not inside.skipped(100) and not inside.skipped(105)
    assert inside.skipped(109)  # 100, 105, 109: three within ten steps (101..110 would hold them)
    edge = _recovery()
    assert not edge.skipped(100) and not edge.skipped(105)
    assert not edge.skipped(110)  # 100 is now eleven steps back: outside the window of ten


def test_a_rollback_forgets_the_drops_that_caused_it_and_halves_the_learning_rate():
    recovery = _recovery()
    for step in (1, 2):
        recovery.skipped(step)
    assert recovery.skipped(3)
    recovery.rolled_back()
    assert recovery.lr_scale == 0.5 and recovery.skipped_steps == []
    assert not recovery.skipped(4)  # one new drop after going back is not a second rollback


def test_a_resume_keeps_the_drops_and_rollbacks_so_far():
    recovery = _recovery()
    recovery.skipped(7)
    recovery.rolled_back()
    recovery.skipped(9)
    resumed = _recovery()
    resumed.load_state_dict(recovery.state_dict())
    assert resumed.skipped_steps == [9] and resumed.rollbacks == 1 and resumed.lr_scale == 0.5


def test_rollbacks_stop_at_the_limit_even_when_each_goes_back_to_the_same_checkpoint():
    recovery = _recovery(rollbacks=2)
    saved_at_checkpoint = recovery.state_dict()  # what the checkpoint holds: no rollback yet
    for _ in range(2):
        assert recovery.can_roll_back()
        state = recovery.state_dict()  # as the trainer does: the checkpoint's state, then this run's count
        recovery.load_state_dict(saved_at_checkpoint)
        recovery.load_state_dict(state)
        recovery.rolled_back()
    assert not recovery.can_roll_back()
