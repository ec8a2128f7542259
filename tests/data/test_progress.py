"""A long data job's progress: a bar on a terminal, lines in a log."""

from vaekit.data import progress
from vaekit.data.progress import JobProgress


def test_without_a_terminal_progress_is_a_line_per_interval_ending_done(monkeypatch, capsys):
    monkeypatch.setattr(progress, "EVERY", 3600.0)  # no line until the end, then one
    with JobProgress("sharding photos", 10, done=4) as job:
        for _ in range(6):
            job.advance(1)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("sharding photos: 10 of 10 images (100%), ") and line.endswith("img/s, done")


def test_each_interval_says_how_much_is_left(monkeypatch, capsys):
    monkeypatch.setattr(progress, "EVERY", 0.0)
    with JobProgress("decoding x", 4) as job:
        job.advance(1)
    assert capsys.readouterr().err.startswith("decoding x: 1 of 4 images (25%), ")
