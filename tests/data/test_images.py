import os
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from vaekit.data.cache import cache_root
from vaekit.data.images import DataError, ImageFiles, load_image_files


def _write(path, mode="RGB", size=(12, 10), value=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode in ("L", "I;16") else (value, value // 2, 0)[: len(mode)]).save(path)


def _load(root, **kw):
    options = {"image_size": 8, "crop": "center", "channels": None, "cache_dir": None} | kw
    return load_image_files(ImageFiles.scan(root, cache_root(options["cache_dir"])), **options)


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
    entries = [p for p in isolated_cache.glob("images-*") if not p.is_symlink()]
    assert len(entries) == 1  # one entry built; channels left to the data also link to it by the count chosen
    assert {p.resolve() for p in isolated_cache.glob("images-*")} == {entries[0].resolve()}
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
    assert isinstance(data.images.base, np.memmap)
    with pytest.raises(ValueError):
        data.images.base[0, 0, 0, 0] = 1
    with pytest.raises(TypeError):  # the rows' view has no assignment at all
        data.images[0, 0, 0, 0] = 1


def test_a_copy_of_the_folder_with_its_times_kept_shares_the_cache_entry(tmp_path):
    _write(tmp_path / "here" / "sub" / "a.png", value=30)
    first = _load(tmp_path / "here")
    shutil.copytree(tmp_path / "here", tmp_path / "node-copy")  # copy2: new inodes and ctimes, same mtimes
    assert _load(tmp_path / "node-copy").images.filename == first.images.filename


def test_a_folder_moved_elsewhere_keeps_its_cache_and_reports_where_it_is_now(tmp_path):
    _write(tmp_path / "here" / "a.png", value=30)
    first = _load(tmp_path / "here")
    (tmp_path / "here").rename(tmp_path / "there")
    moved = _load(tmp_path / "there")
    assert moved.images.filename == first.images.filename and moved.source == str(tmp_path / "there")


def test_a_same_size_file_copied_over_with_cp_p_is_decoded_again(tmp_path):
    _write(tmp_path / "img" / "b.png", value=0)
    os.utime(tmp_path / "img" / "b.png", ns=(10**18, 10**18))
    assert np.asarray(_load(tmp_path / "img").images).mean() == 0
    _write(tmp_path / "white.png", value=250)
    shutil.copy2(tmp_path / "white.png", tmp_path / "img" / "b.png")  # cp -p: the source's mtime
    assert _load(tmp_path / "img").images[:, 0].mean() == 250  # its manifest entry fails the spot check


def test_the_channel_count_is_part_of_the_cache_key(tmp_path):
    _write(tmp_path / "a.png")
    assert _load(tmp_path, channels=1).images.shape[1] == 1
    assert _load(tmp_path, channels=3).images.shape[1] == 3


def test_exif_orientation_is_applied(tmp_path):
    picture = Image.new("RGB", (40, 20), (0, 0, 255))
    picture.paste((255, 0, 0), (0, 0, 20, 20))  # left half red, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    picture.save(tmp_path / "phone.jpg", exif=exif)
    image = _load(tmp_path, image_size=16, crop="none").images[0].astype(int)
    assert image[0, :4].mean() > 200 and image[0, -4:].mean() < 60  # red on top after rotation


def test_gif_and_tiff_files_are_images_too(tmp_path):
    _write(tmp_path / "a.gif", mode="P")
    _write(tmp_path / "b.tif")
    assert ImageFiles.scan(tmp_path).members == ("a.gif", "b.tif")


def _zip_of_four(path, method=zipfile.ZIP_DEFLATED):
    import io

    def bmp(i):
        buffer = io.BytesIO()
        Image.new("RGB", (32, 32), (40 * i, 90, 200)).save(buffer, "BMP")
        return buffer.getvalue()

    with zipfile.ZipFile(path, "w", method) as archive:
        for i in range(4):
            archive.writestr(f"img{i}.bmp", bmp(i))
    return bytearray(path.read_bytes())


def _damage_first_member(path, method, offset_in_data, flag=None, compression=None):
    data = _zip_of_four(path, method)
    if flag is not None or compression is not None:
        central = data.index(b"PK\x01\x02")
        for start, field_offset, value in (
            (0, 6, flag),
            (central + 2, 6, flag),
            (0, 8, compression),
            (central + 2, 8, compression),
        ):
            if value is not None:
                data[start + field_offset : start + field_offset + 2] = value.to_bytes(2, "little")
    else:
        name_length = int.from_bytes(data[26:28], "little")
        start = 30 + name_length + offset_in_data
        data[start : start + 20] = b"\xff" * 20
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("method", "damage", "named"),
    [
        (zipfile.ZIP_DEFLATED, {"offset_in_data": 10}, r"img0\.bmp"),  # a broken deflate stream
        (zipfile.ZIP_STORED, {"offset_in_data": 60}, r"img0\.bmp"),  # a CRC mismatch
        (zipfile.ZIP_DEFLATED, {"offset_in_data": 0, "flag": 1}, r"img0\.bmp \(encrypted\)"),  # left out unread
        (zipfile.ZIP_DEFLATED, {"offset_in_data": 0, "compression": 98}, r"img0\.bmp"),  # an unsupported method
    ],
)
def test_a_damaged_zip_member_is_skipped_and_named_like_a_bad_file(tmp_path, method, damage, named):
    _damage_first_member(tmp_path / "set.zip", method, **damage)
    with pytest.warns(UserWarning, match=named) as warned:
        data = _load(tmp_path / "set.zip")
    assert len(data) == 3 and "set.zip" in str(warned[0].message)


def test_an_oversized_zip_member_is_skipped_without_being_read(tmp_path, monkeypatch):
    import vaekit.data.images as images

    monkeypatch.setattr(images, "MAX_MEMBER_BYTES", 1 << 20)
    _zip_of_four(tmp_path / "set.zip")
    with zipfile.ZipFile(tmp_path / "set.zip", "a") as archive:
        archive.writestr("zeros.bmp", bytes(4 << 20))
    with pytest.warns(UserWarning, match=r"zeros\.bmp \(4194304 bytes uncompressed"):
        assert len(_load(tmp_path / "set.zip")) == 4


def test_a_file_that_is_not_a_zip_inside_is_one_clear_error(tmp_path):
    data = _zip_of_four(tmp_path / "set.zip")
    central = data.index(b"PK\x01\x02")
    (tmp_path / "set.zip").write_bytes(bytes(data[: central + 10]) + bytes(data[-22:]))
    with pytest.raises(DataError, match=r"set\.zip"):
        ImageFiles.scan(tmp_path / "set.zip")
