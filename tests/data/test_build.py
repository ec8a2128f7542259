"""A folder's cache build: in worker processes or threads alike, resumed where it was interrupted."""

import numpy as np
import pytest
from PIL import Image

from vaekit.data import build, progress
from vaekit.data.cache import cache_root
from vaekit.data.images import ImageFiles, load_image_files


def _folder(root, count=7):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", (10 + i, 9), (20 * i, 100, 255 - 20 * i)).save(root / f"{i:02d}.png")
    (root / "03.png").write_bytes(b"not an image")
    return root


def _load(root, cache, **kw):
    options = {"image_size": 8, "crop": "center", "channels": None, "cache_dir": str(cache), "workers": 2} | kw
    return load_image_files(ImageFiles.scan(root), **options)


def test_worker_processes_decode_what_threads_decode(tmp_path, monkeypatch):
    data = _folder(tmp_path / "img")
    monkeypatch.setattr(build, "CHUNK", 2)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        threads = _load(data, tmp_path / "threads")
    monkeypatch.setattr(build, "PROCESS_FROM", 1)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        processes = _load(data, tmp_path / "processes")
    assert processes.names == threads.names and "03.png" not in threads.names
    np.testing.assert_array_equal(processes.images, threads.images)


def test_an_interrupted_build_resumes_with_the_chunks_not_yet_done(tmp_path, monkeypatch):
    data = _folder(tmp_path / "img")
    monkeypatch.setattr(build, "CHUNK", 2)
    calls = []
    decode = build.RowDecoder.__call__

    def counted(self, start, stop):
        calls.append(start)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return decode(self, start, stop)

    monkeypatch.setattr(build.RowDecoder, "__call__", counted)
    with pytest.raises(KeyboardInterrupt):
        _load(data, tmp_path / "cache", workers=1)
    assert [p.name for p in cache_root(tmp_path / "cache").glob(".*.partial")]  # kept for the resume
    calls.clear()
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        resumed = _load(data, tmp_path / "cache", workers=1)
    assert sorted(calls) == [4, 6]  # rows 0-3 were done before
    monkeypatch.setattr(build.RowDecoder, "__call__", decode)
    with pytest.warns(UserWarning):
        fresh = _load(data, tmp_path / "fresh")
    np.testing.assert_array_equal(resumed.images, fresh.images)
    assert not list((tmp_path / "cache").glob(".*"))  # nothing partial left, no lock file


def test_a_gray_folder_keeps_one_channel_after_compaction(tmp_path):
    data = tmp_path / "gray"
    data.mkdir()
    for i in range(3):
        Image.new("L", (8, 8), 40 * i).save(data / f"{i}.png")
    (data / "bad.png").write_bytes(b"")
    with pytest.warns(UserWarning):
        dataset = _load(data, tmp_path / "cache")
    assert dataset.images.shape == (3, 1, 8, 8)
    assert [int(row.mean()) for row in dataset.images] == [0, 40, 80]
    entry = next(p for p in (tmp_path / "cache").iterdir() if p.name.startswith("images-") and not p.is_symlink())
    assert sorted(p.name for p in entry.iterdir()) == ["images.npy", "meta.json", "names.bin"]


def test_without_a_terminal_the_build_reports_its_progress_in_lines(tmp_path, monkeypatch, capsys):
    data = _folder(tmp_path / "img")
    monkeypatch.setattr(build, "CHUNK", 2)
    monkeypatch.setattr(progress, "EVERY", 0.0)
    with pytest.warns(UserWarning):
        _load(data, tmp_path / "cache", workers=1)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("decoding img:")]
    assert [line.split(": ")[1].split(" images")[0] for line in lines] == ["2 of 7", "4 of 7", "6 of 7", "7 of 7"]
    assert "(100%)" in lines[-1] and lines[-1].endswith("img/s, done") and lines[0].endswith("s left")
