"""The dataset cache heals itself, builds each entry once at a time and never leaves half-built
entries (a resumable build keeps its progress for the next start)."""

from __future__ import annotations

import numpy as np
import pytest

from vaekit.data.cache import cached_dataset
from vaekit.data.dataset import ImageDataset


def _build(_folder):
    return ImageDataset(np.arange(2 * 3 * 4 * 4, dtype=np.uint8).reshape(2, 3, 4, 4), source="test")


@pytest.mark.parametrize(
    "damage",
    [
        lambda entry: (entry / "images.npy").write_bytes((entry / "images.npy").read_bytes()[:100]),
        lambda entry: (entry / "meta.json").write_text("{"),
        lambda entry: (entry / "images.npy").unlink(),
    ],
)
def test_a_damaged_entry_is_rebuilt_with_a_warning(tmp_path, damage):
    first = cached_dataset(tmp_path, "t", {"a": 1}, _build)
    (entry,) = [p for p in tmp_path.iterdir() if p.name.startswith("t-")]
    del first
    damage(entry)
    with pytest.warns(UserWarning, match="damaged.*rebuilding"):
        again = cached_dataset(tmp_path, "t", {"a": 1}, _build)
    np.testing.assert_array_equal(again.images, _build(None).images)


def test_an_interrupted_build_leaves_no_temporary_folder(tmp_path):
    def interrupted(folder):
        (folder / "partial.npy").write_bytes(b"x" * 100)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_dataset(tmp_path, "t", {"a": 2}, interrupted)
    assert list(tmp_path.iterdir()) == []


def test_sigterm_during_a_build_exits_143_and_leaves_no_temporary_folder(tmp_path):
    import os
    import signal

    def terminated(folder):
        (folder / "partial.npy").write_bytes(b"x" * 100)
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM should have stopped the build")

    with pytest.raises(SystemExit) as stopped:
        cached_dataset(tmp_path, "t", {"a": 3}, terminated)
    assert stopped.value.code == 143 and list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def _child_building(tmp_path, key, seconds):
    """A real process that builds entry ``{'a': key}`` slowly (a second writer of the same cache)."""
    import subprocess
    import sys
    import time

    child = subprocess.Popen(
        [
            sys.executable, "-c",
            "import time, numpy as np\n"
            "from vaekit.data.cache import cached_dataset\n"
            "from vaekit.data.dataset import ImageDataset\n"
            "def slow(folder):\n"
            "    (folder / 'partial.npy').write_bytes(b'x' * 100)\n"
            f"    time.sleep({seconds})\n"
            "    return ImageDataset(np.full((1, 1, 2, 2), 7, np.uint8))\n"
            f"cached_dataset({str(tmp_path)!r}, 't', {{'a': {key}}}, slow)\n",
        ]
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob(".t-*.partial/partial.npy")) and time.monotonic() < deadline:
        time.sleep(0.05)
    return child


def test_what_a_killed_build_left_is_removed_by_the_next_one(tmp_path):
    """SIGKILL (an out-of-memory kill) runs no clean-up: a real child process is killed mid-build."""
    import os
    import signal

    from vaekit.data.cache import FileLock

    child = _child_building(tmp_path, 4, 60)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert list(tmp_path.glob(".t-*.partial"))  # left behind
    from vaekit.data.cache import cache_key

    other = f"t-{cache_key({'a': 98})}"
    busy = tmp_path / f".{other}.partial"
    busy.mkdir()
    held = FileLock(tmp_path / f".{other}.lock")
    assert held.take()  # a build that a live process (this one) holds is left alone
    cached_dataset(tmp_path, "t", {"a": 5}, _build)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [f".{other}.lock", busy.name]
    held.close()


def test_a_second_process_waits_for_the_build_and_reads_its_entry(tmp_path, capfd):
    child = _child_building(tmp_path, 6, 0.8)

    def must_not_build(_folder):
        raise AssertionError("the entry is being built by the other process")

    found = cached_dataset(tmp_path, "t", {"a": 6}, must_not_build)
    assert child.wait() == 0 and int(found.images[0, 0, 0, 0]) == 7
    assert "another process is building" in capfd.readouterr().err


def test_an_interrupted_resumable_build_is_kept_a_week_for_its_resume(tmp_path):
    import os
    import time

    from vaekit.data.cache import cache_key

    def interrupted(folder):
        (folder / "progress.npy").write_bytes(b"x" * 100)
        raise KeyboardInterrupt

    for key in (7, 8):
        with pytest.raises(KeyboardInterrupt):
            cached_dataset(tmp_path, "t", {"a": key}, interrupted, resumable=True)
    old, recent = (tmp_path / f".t-{cache_key({'a': key})}.partial" for key in (7, 8))
    week_ago = time.time() - 8 * 24 * 3600
    for path in old.iterdir():
        os.utime(path, (week_ago, week_ago))
    cached_dataset(tmp_path, "t", {"a": 9}, _build)
    assert list(tmp_path.glob(".t-*.partial")) == [recent]
    found_there = []

    def resume(folder):
        found_there.extend(p.name for p in folder.iterdir())
        return _build(folder)

    cached_dataset(tmp_path, "t", {"a": 8}, resume, resumable=True)
    assert "progress.npy" in found_there and not list(tmp_path.glob(".t-*"))


def test_the_cache_lists_entries_aliases_and_partial_builds_and_prunes_the_unused(tmp_path):
    import os
    import time

    from vaekit.data.cache import _link, cache_key
    from vaekit.data.cache_items import cache_items, remove_items

    def interrupted(folder):
        raise KeyboardInterrupt

    for key in (10, 11):
        cached_dataset(tmp_path, "t", {"a": key}, _build)
    unused = tmp_path / f"t-{cache_key({'a': 10})}"
    _link(unused, tmp_path / f"t-{cache_key({'a': 99})}")
    with pytest.raises(KeyboardInterrupt):
        cached_dataset(tmp_path, "t", {"a": 12}, interrupted, resumable=True)
    (tmp_path / "streams").mkdir()
    assert sorted(item.kind for item in cache_items(tmp_path)) == ["alias", "entry", "entry", "kept", "partial"]
    month_ago = time.time() - 40 * 86400
    os.utime(unused / "meta.json", (month_ago, month_ago))
    stale = [i for i in cache_items(tmp_path) if i.kind == "entry" and i.last_used < time.time() - 30 * 86400]
    assert [i.path for i in stale] == [unused]
    remove_items(stale)
    assert sorted(item.kind for item in cache_items(tmp_path)) == ["entry", "kept", "partial"]  # its alias went too
    os.utime(tmp_path / f"t-{cache_key({'a': 11})}" / "meta.json", (month_ago, month_ago))
    cached_dataset(tmp_path, "t", {"a": 11}, _build)  # a read records the use
    assert all(i.last_used > month_ago for i in cache_items(tmp_path) if i.kind == "entry")


def test_listing_and_clearing_the_cache_never_touch_what_vaekit_did_not_name(tmp_path):
    from vaekit.data.cache_items import cache_items, remove_items

    cached_dataset(tmp_path, "t", {"a": 13}, _build)
    (tmp_path / "my-project").mkdir()
    (tmp_path / "my-project" / "meta.json").write_text("{}")
    (tmp_path / "notes").symlink_to(tmp_path / "elsewhere")  # a dangling link of the user's
    (tmp_path / ".draft.partial").mkdir()  # not named as vaekit names its builds
    remove_items(cache_items(tmp_path))
    cached_dataset(tmp_path, "t", {"a": 14}, _build)  # a build clears abandoned builds: not this one
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("t-")) == [
        ".draft.partial",
        "my-project",
        "notes",
    ]


def test_names_are_read_from_their_file_only_when_used_and_splits_select_them_unread(tmp_path):
    from vaekit.data.dataset import Names

    def named(_folder):
        return ImageDataset(np.zeros((5, 1, 2, 2), np.uint8), names=[f"d/{i}.png" for i in range(5)], source="t")

    cached_dataset(tmp_path, "t", {"a": 15}, named)
    loaded = cached_dataset(tmp_path, "t", {"a": 15}, named)
    assert isinstance(loaded.names, Names) and loaded.names._read is None and len(loaded.names) == 5
    part = loaded.subset(np.array([4, 1]))
    assert part.names._read is None and list(part.names) == ["d/4.png", "d/1.png"]
    assert list(part.subset(np.array([1])).names) == ["d/1.png"]  # a split of a split
    assert loaded.names == [f"d/{i}.png" for i in range(5)]


def test_a_cache_on_a_file_system_without_locks_still_builds_with_a_warning(tmp_path, monkeypatch):
    import errno
    import fcntl

    def no_locks(handle, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    from vaekit.data.cache import cache_key

    monkeypatch.setattr(fcntl, "flock", no_locks)
    elsewhere = tmp_path / f".t-{cache_key({'a': 17})}.partial"
    elsewhere.mkdir()  # perhaps another process's build under way: without locks, nobody can tell
    with pytest.warns(UserWarning, match="takes no file locks"):
        built = cached_dataset(tmp_path, "t", {"a": 16}, _build)
    np.testing.assert_array_equal(np.asarray(built.images), _build(None).images)
    assert elsewhere.is_dir()  # left alone


def test_a_build_killed_with_its_workers_running_leaves_no_process_and_no_lock(tmp_path):
    """kill -9 of a build's parent (what the out-of-memory killer does): its decoding worker
    processes end, none keeps the entry's lock, and the next start takes it at once."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from vaekit.data.cache import FileLock, cache_key

    script = (
        "import os, time, numpy as np\n"
        "from vaekit.data.build import _pool\n"
        "from vaekit.data.cache import cached_dataset\n"
        "def slow_rows(start, stop):\n"
        "    open(f'{os.environ[\"MARK\"]}/worker-{os.getpid()}', 'w').close()\n"
        "    time.sleep(60)\n"
        "def build(folder):\n"
        "    with _pool(slow_rows, 2, processes=True) as run:\n"
        "        list(run([(0, 1), (1, 2)]))\n"
        f"cached_dataset({str(tmp_path / 'cache')!r}, 't', {{'a': 1}}, build)\n"
    )
    marks = tmp_path / "marks"
    marks.mkdir()
    child = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "MARK": str(marks)})
    deadline = time.monotonic() + 60
    while len(list(marks.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = [int(path.name.split("-")[1]) for path in marks.iterdir()]
    assert len(workers) == 2, "the workers did not start"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    lock = FileLock(tmp_path / "cache" / f".t-{cache_key({'a': 1})}.lock")
    deadline = time.monotonic() + 10
    while not lock.take() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lock.held, "an orphaned worker kept the entry's lock"
    lock.close()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "a worker outlived its build"


def _alive(pid: int) -> bool:
    from pathlib import Path

    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" not in status.read_text()
    except OSError:
        return False


def test_clearing_a_folder_that_is_not_a_cache_removes_none_of_its_files(tmp_path):
    """Folders named as vaekit names its own, links and partial-looking folders of a user's stay."""
    from vaekit.data.cache_items import cache_items, remove_items

    for folder, name in (("manifests", "notes.txt"), ("shard-index", "list.txt"), (".x-0123456789abcdef.partial", "a")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_text("mine")
    (tmp_path / "t-0123456789abcdef").symlink_to(tmp_path / "photos", target_is_directory=True)
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "p.png").write_text("mine")
    assert cache_items(tmp_path) == []
    remove_items(cache_items(tmp_path))
    assert (tmp_path / "manifests" / "notes.txt").read_text() == "mine"
    assert (tmp_path / "shard-index" / "list.txt").read_text() == "mine"
    assert (tmp_path / ".x-0123456789abcdef.partial" / "a").read_text() == "mine"
    assert (tmp_path / "t-0123456789abcdef").is_symlink() and (tmp_path / "photos" / "p.png").is_file()


def test_clearing_removes_vaekits_own_listings_and_keeps_a_users_file_beside_them(tmp_path):
    from vaekit.data.cache_items import cache_items, remove_items

    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / ("a" * 24 + ".npz")).write_bytes(b"listing")
    (tmp_path / "manifests" / "notes.txt").write_text("mine")
    cached_dataset(tmp_path, "t", {"a": 31}, _build)
    remove_items(cache_items(tmp_path))
    assert sorted(p.name for p in (tmp_path / "manifests").iterdir()) == ["notes.txt"]
    assert not list(tmp_path.glob("t-*"))


def test_clearing_leaves_an_entry_that_a_running_build_holds(tmp_path, capsys):
    from vaekit.data.cache import FileLock, cache_key
    from vaekit.data.cache_items import cache_items, remove_items

    name = f"t-{cache_key({'a': 32})}"
    building = tmp_path / f".{name}.partial"
    building.mkdir()
    (building / "status.npy").write_bytes(b"x")
    held = FileLock(tmp_path / f".{name}.lock")
    assert held.take()  # this process is building it
    try:
        remove_items(cache_items(tmp_path))
        assert (building / "status.npy").is_file() and (tmp_path / f".{name}.lock").is_file()
        assert "in use by a running process" in capsys.readouterr().err
    finally:
        held.close()
    remove_items(cache_items(tmp_path))  # once it is not held, it goes
    assert not building.exists()


def test_the_cache_command_on_a_file_or_an_empty_variable_is_not_the_working_folder(tmp_path, monkeypatch, capsys):
    from vaekit.cli import main
    from vaekit.data.cache import default_cache_dir

    (tmp_path / "afile").write_text("x")
    assert main(["cache", "--dir", str(tmp_path / "afile")]) == 2
    assert "not a folder" in capsys.readouterr().err
    monkeypatch.setenv("VAEKIT_CACHE", "")
    assert default_cache_dir().name == "vaekit" and default_cache_dir().is_absolute()


def test_clearing_leaves_an_entry_that_a_process_is_reading(tmp_path, capsys):
    from vaekit.data.cache_items import cache_items, remove_items

    reading = cached_dataset(tmp_path, "t", {"a": 33}, _build)  # this process reads it
    remove_items(cache_items(tmp_path))
    assert "in use by a running process" in capsys.readouterr().err
    assert np.array_equal(np.asarray(reading.images), _build(None).images)  # still there to read
    assert list(tmp_path.glob("t-*"))
    del reading
    import gc

    gc.collect()
    remove_items(cache_items(tmp_path))  # nobody reads it now: it goes
    assert not list(tmp_path.glob("t-*"))
