import pytest

from vaekit.io import files
from vaekit.io.files import remove_partial_folders, replace_folder, write_atomically


def test_a_write_that_fails_before_the_rename_keeps_the_old_file(tmp_path, monkeypatch):
    target = write_atomically(tmp_path / "metrics.csv", "step\n1\n2\n")

    def disk_gone(_descriptor):
        raise OSError("disk gone")

    monkeypatch.setattr(files.os, "fsync", disk_gone)
    with pytest.raises(OSError, match="disk gone"):
        write_atomically(target, "step\n")
    assert target.read_text() == "step\n1\n2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]  # no partial file left


def test_a_folder_is_replaced_whole_keeping_the_files_the_writer_does_not_make(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights").write_text("old")
    (model / "card").write_text("old")
    (model / "attributes").write_text("kept")

    def write(folder):
        (folder / "weights").write_text("new")
        (folder / "card").write_text("new")

    replace_folder(model, write)
    assert {p.name: p.read_text() for p in model.iterdir()} == {"weights": "new", "card": "new", "attributes": "kept"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_writer_that_fails_halfway_leaves_the_old_folder_as_it_was(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights").write_text("old")

    def fails_after_one_file(folder):
        (folder / "weights").write_text("new")
        raise OSError("killed")

    with pytest.raises(OSError, match="killed"):
        replace_folder(model, fails_after_one_file)
    assert {p.name: p.read_text() for p in model.iterdir()} == {"weights": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_what_an_interrupted_replacement_leaves_is_cleaned(tmp_path):
    (tmp_path / ".model-new-abc").mkdir()
    (tmp_path / ".model-old-def" / "model").mkdir(parents=True)
    (tmp_path / "model").mkdir()
    remove_partial_folders(tmp_path, "model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_an_atomically_written_file_is_readable_as_the_umask_says(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = write_atomically(tmp_path / "a.txt", "text")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600


def test_a_process_another_user_owns_counts_as_alive(monkeypatch):
    import os

    def not_yours(pid, signal):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "kill", not_yours)
    assert files.process_alive(12345)  # its run lock is never taken over
    monkeypatch.setattr(os, "kill", lambda pid, signal: (_ for _ in ()).throw(ProcessLookupError()))
    assert not files.process_alive(12345)
    assert not files.process_alive(0) and not files.process_alive(-5)


def test_a_file_of_exactly_the_limit_is_read_and_one_byte_more_is_refused(tmp_path):
    from vaekit.schema import FileRefused, read_bounded

    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_bounded(path, 100) == b"x" * 100
    with pytest.raises(FileRefused, match="too large"):
        read_bounded(path, 99)
