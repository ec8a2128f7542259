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
