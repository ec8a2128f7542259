"""The dataset cache heals itself and never leaves half-built entries."""

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


def test_what_a_killed_build_left_is_removed_by_the_next_one(tmp_path):
    """SIGKILL (an out-of-memory kill) runs no clean-up: a real child process is killed mid-build."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    child = subprocess.Popen(
        [
            sys.executable, "-c",
            "import time, numpy as np\n"
            "from vaekit.data.cache import cached_dataset\n"
            "def slow(folder):\n"
            "    (folder / 'partial.npy').write_bytes(b'x' * 100)\n"
            "    time.sleep(60)\n"
            f"cached_dataset({str(tmp_path)!r}, 't', {{'a': 4}}, slow)\n",
        ]
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not any(p.name.startswith(".t-") for p in tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".t-")]  # left behind
    busy = tmp_path / f".t-other@{socket.gethostname()}@{os.getpid()}@x"
    busy.mkdir()  # a build of a live process (this one) is left alone
    cached_dataset(tmp_path, "t", {"a": 5}, _build)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [busy.name]
