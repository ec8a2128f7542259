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
