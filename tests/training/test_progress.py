"""Progress: a bar on a terminal, plain lines elsewhere; the clock counts time before a resume."""

import time

from vaekit.training.progress import Clock, Progress


def test_without_a_terminal_each_shown_row_is_one_plain_line(capsys):
    progress = Progress(total=10, done=4, name="run", shown=True)
    progress.advance()
    progress.show(5, {"loss": "3.2", "kl": "0.1"})
    progress.close()
    assert capsys.readouterr().out == "step 5/10 loss=3.2 kl=0.1\n"


def test_the_clock_adds_the_seconds_trained_before_a_resume():
    clock = Clock(before=100.0)
    time.sleep(0.01)
    assert 100.01 <= clock.elapsed() < 101
    clock.images += 50
    assert clock.images_per_s() > 0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def elapsed(self) -> float:
        return self.now


def test_with_a_time_budget_the_total_is_the_steps_the_rest_of_the_budget_holds(capsys):
    clock = FakeClock()
    progress = Progress(total=20_614, done=0, name="run", shown=True, budget=60.0, clock=clock)
    assert progress.total == 20_614  # no pace yet: the plan
    for _ in range(10):
        clock.now += 0.5  # two steps a second: 60 s hold 120 steps
        progress.advance()
    assert progress.total == 120
    progress.show(10, {})
    assert capsys.readouterr().out == "step 10/120 \n"


def test_a_plan_shorter_than_the_budget_stays_the_total_and_a_resume_paces_from_its_own_steps():
    clock = FakeClock()
    clock.now = 50.0  # trained 50 s before the resume
    progress = Progress(total=1000, done=400, name="run", shown=True, budget=60.0, clock=clock)
    for _ in range(5):
        clock.now += 1.0  # a step a second now: 5 s left after these five
        progress.advance()
    assert progress.total == 410
    short = Progress(total=30, done=0, name="run", shown=True, budget=3600.0, clock=FakeClock())
    short.clock.now = 1.0
    short.advance()
    assert short.total == 30
