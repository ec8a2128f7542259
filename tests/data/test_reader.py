"""The one image reader: raster formats only, pixel count bounded from the header, EXIF applied."""

import os
import stat

import pytest
from PIL import Image

from vaekit.data.images import ImageFiles, load_image_files
from vaekit.data.reader import MAX_PIXELS, UnreadableImage, read_image

POSTSCRIPT = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"


@pytest.fixture
def ghostscript_spy(tmp_path, monkeypatch):
    """A `gs` on PATH that records being run: Pillow's EPS plugin would call it."""
    bin_dir, called = tmp_path / "bin", tmp_path / "gs-was-run"
    bin_dir.mkdir()
    (bin_dir / "gs").write_text(f"#!/bin/sh\ntouch {called}\nexit 1\n")
    (bin_dir / "gs").chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return called


def test_postscript_named_png_is_refused_without_running_ghostscript(tmp_path, ghostscript_spy):
    disguised = tmp_path / "x.png"
    disguised.write_bytes(POSTSCRIPT)
    with pytest.raises(UnreadableImage, match="not an image in a format vaekit reads") as raised:
        read_image(disguised)
    assert raised.value.reason == "format"
    assert not ghostscript_spy.exists()


def test_a_training_folder_skips_a_disguised_postscript_file_and_keeps_the_rest(tmp_path, ghostscript_spy):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (20, 20), (i * 60, 0, 0)).save(folder / f"{i}.png")
    (folder / "evil.png").write_bytes(POSTSCRIPT)
    with pytest.warns(UserWarning, match=r"(?s)skipped 1 unreadable image.*evil\.png"):
        dataset = load_image_files(
            ImageFiles.scan(folder), image_size=16, crop="center", channels=3, cache_dir=str(tmp_path / "cache")
        )
    assert len(dataset) == 3
    assert not ghostscript_spy.exists()


def test_the_pixel_count_is_checked_from_the_header_before_decoding(tmp_path):
    side = int(MAX_PIXELS**0.5) + 1
    huge = tmp_path / "huge.png"
    Image.new("1", (side, side)).save(huge)  # a few KB on disk, 64 megapixels once decoded
    with pytest.raises(UnreadableImage, match="the limit is") as raised:
        read_image(huge)
    assert raised.value.reason == "pixels"


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (30, 10))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    image.save(tmp_path / "photo.jpg", exif=exif)
    assert read_image(tmp_path / "photo.jpg").size == (10, 30)
