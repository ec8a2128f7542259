import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from vaekit.data.images import DataError, ImageFiles, load_image_files


def _write(path, mode="RGB", size=(12, 10), value=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode in ("L", "I;16") else (value, value // 2, 0)[: len(mode)]).save(path)


def _load(root, **kw):
    options = {"image_size": 8, "crop": "center", "channels": None, "cache_dir": None} | kw
    return load_image_files(ImageFiles.scan(root), **options)


def test_folder_is_scanned_recursively_for_all_formats(tmp_path):
    for name in ("a.png", "sub/b.jpg", "sub/deeper/c.webp", "d.bmp", "e.JPEG"):
        _write(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    data = _load(tmp_path)
    assert data.images.shape == (5, 3, 8, 8) and data.images.dtype == np.uint8
    assert data.names == ["a.png", "d.bmp", "e.JPEG", "sub/b.jpg", "sub/deeper/c.webp"]


def test_zip_archive_matches_folder(tmp_path):
    for i in range(3):
        _write(tmp_path / "imgs" / f"{i}.png", value=40 * i)
    with zipfile.ZipFile(tmp_path / "imgs.zip", "w") as archive:
        for i in range(3):
            archive.write(tmp_path / "imgs" / f"{i}.png", f"imgs/{i}.png")
    np.testing.assert_array_equal(_load(tmp_path / "imgs").images, _load(tmp_path / "imgs.zip").images)


def test_a_folder_holding_only_a_zip_reads_the_zip(tmp_path):
    _write(tmp_path / "src" / "a.png")
    (tmp_path / "data").mkdir()
    with zipfile.ZipFile(tmp_path / "data" / "images.zip", "w") as archive:
        archive.write(tmp_path / "src" / "a.png", "images/a.png")
    (tmp_path / "data" / "README.md").write_text("about the data")
    files = ImageFiles.scan(tmp_path / "data")
    assert files.is_zip and files.members == ("images/a.png",)


def test_corrupt_and_truncated_files_are_skipped_with_one_warning(tmp_path):
    _write(tmp_path / "good.png")
    (tmp_path / "text.png").write_text("hello")
    _write(tmp_path / "whole.jpg", size=(64, 64))
    payload = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(payload[: len(payload) // 2])
    (tmp_path / "whole.jpg").unlink()
    with pytest.warns(UserWarning, match=r"skipped 2 unreadable image\(s\)") as record:
        data = _load(tmp_path)
    assert data.names == ["good.png"]
    assert "cut.jpg" in str(record[0].message) and "text.png" in str(record[0].message)


def test_gray_only_folder_gives_one_channel(tmp_path):
    _write(tmp_path / "a.png", mode="L")
    _write(tmp_path / "b.png", mode="I;16", value=65535)
    data = _load(tmp_path)
    assert data.images.shape[1] == 1
    assert data.images[1].min() == 255  # 16-bit white stays white


def test_mixed_gray_and_colour_give_three_channels(tmp_path):
    _write(tmp_path / "a.png", mode="L")
    _write(tmp_path / "b.png", mode="RGBA")
    assert _load(tmp_path).images.shape[1] == 3


def test_channels_can_be_forced(tmp_path):
    _write(tmp_path / "a.png")
    assert _load(tmp_path, channels=1).images.shape[1] == 1


def test_empty_folder_says_where_it_looked(tmp_path):
    with pytest.raises(DataError, match=f"no images found in {tmp_path}"):
        ImageFiles.scan(tmp_path)


def test_all_files_broken_is_an_error(tmp_path):
    (tmp_path / "x.png").write_text("nope")
    with pytest.raises(DataError, match="none of the 1 image files"), pytest.warns(UserWarning):
        _load(tmp_path)


def test_cache_is_reused_then_rebuilt_on_change(tmp_path, isolated_cache):
    _write(tmp_path / "img" / "a.png", value=10)
    first = _load(tmp_path / "img")
    assert len(list(isolated_cache.iterdir())) == 1
    again = _load(tmp_path / "img")
    assert again.images.filename == first.images.filename  # the same memory-mapped entry

    assert _load(tmp_path / "img", image_size=4).images.shape[-1] == 4  # new size: new entry
    assert _load(tmp_path / "img", crop="none").images.filename != first.images.filename  # new recipe

    _write(tmp_path / "img" / "a.png", value=200, size=(12, 11))  # a changed file
    os.utime(tmp_path / "img" / "a.png", ns=(1, 1))
    changed = _load(tmp_path / "img")
    assert changed.images.filename != first.images.filename
    assert changed.images[0, 0].mean() > first.images[0, 0].mean()


def test_cached_images_are_memory_mapped_and_read_only(tmp_path):
    _write(tmp_path / "a.png")
    data = _load(tmp_path)
    assert isinstance(data.images, np.memmap)
    with pytest.raises(ValueError):
        data.images[0, 0, 0, 0] = 1
