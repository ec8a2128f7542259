"""A run folder's lock: one writer per run, a dead writer's lock taken over, nobody else's."""

from __future__ import annotations

import os
import socket

import pytest

from vaekit.io.run_folder import RunDir, RunInUse


def test_a_lock_held_on_another_host_is_never_taken_over_even_when_its_pid_is_free_here(tmp_path):
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    run.lock_file.write_text("999999 another-host.example\n")  # no such pid here: it may live there
    with pytest.raises(RunInUse, match=r"another-host\.example"):
        run.lock()
    assert run.lock_file.read_text() == "999999 another-host.example\n"


def test_a_lock_of_a_dead_process_of_this_host_is_taken_over(tmp_path):
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    run.lock_file.write_text(f"999999 {socket.gethostname()}\n")
    with pytest.warns(UserWarning, match="which is gone"):
        run.lock()
    assert run.lock_file.read_text().split()[0] == str(os.getpid())


def test_unlock_removes_only_its_own_lock(tmp_path):
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    run.lock_file.write_text(f"1 {socket.gethostname()}\n")  # another process's
    run.unlock()
    assert run.lock_file.is_file()
    run.lock_file.unlink()
    run.lock()
    run.unlock()
    assert not run.lock_file.exists()


def test_a_resume_keeps_the_metrics_rows_up_to_and_including_its_checkpoints_step(tmp_path):
    from vaekit.io.run_folder import MetricsLog

    path = tmp_path / "metrics.csv"
    log = MetricsLog(path, ("loss",))
    for step in range(1, 7):
        log.write({"step": step, "epoch": 0, "split": "train", "loss": float(step)})
    resumed = MetricsLog(path, ("loss",), resume_step=4)
    assert [int(row["step"]) for row in resumed.read()] == [1, 2, 3, 4]
