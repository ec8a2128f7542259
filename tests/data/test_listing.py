"""A folder's listing: every image with its size and time, kept as a manifest between starts."""

import os
import shutil

import pytest

from vaekit.data import listing
from vaekit.data.listing import is_image_name, list_folder


def _touch(path, payload=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)


def test_images_are_listed_recursively_sorted_by_path_components(tmp_path):
    for name in ("a/b.png", "a-c.png", "z.JPG", "notes.txt", "__MACOSX/x.png", "._y.png"):
        _touch(tmp_path / name)
    found = list_folder(tmp_path)
    assert found.members == ("a/b.png", "a-c.png", "z.JPG")  # "a" < "a-c" as Path objects sort
    assert list(found.sizes) == [1, 1, 1]
    assert found.mtimes[0] == (tmp_path / "a" / "b.png").stat().st_mtime_ns


def test_links_to_files_are_followed_links_to_folders_are_not(tmp_path):
    _touch(tmp_path / "data" / "a.png")
    (tmp_path / "data" / "link.png").symlink_to(tmp_path / "data" / "a.png")
    (tmp_path / "data" / "loop").symlink_to(tmp_path / "data", target_is_directory=True)
    assert list_folder(tmp_path / "data").members == ("a.png", "link.png")


@pytest.mark.parametrize("name", ["photo.png", "deep/x.webp", "y.TIFF"])
def test_image_names_by_suffix(name):
    assert is_image_name(name)


@pytest.mark.parametrize("name", ["a.txt", "._a.png", "__MACOSX/a.png", "png"])
def test_not_image_names(name):
    assert not is_image_name(name)


def test_a_start_reuses_the_manifest_while_no_folder_changed(tmp_path, monkeypatch):
    _touch(tmp_path / "data" / "a.png")
    first = list_folder(tmp_path / "data", tmp_path / "cache")
    (tmp_path / "data" / "a.png").write_bytes(b"grown in place")  # no folder's time changes
    monkeypatch.setattr(listing, "SPOT_CHECKS", 0)
    assert list_folder(tmp_path / "data", tmp_path / "cache").sizes[0] == first.sizes[0]  # not stat'ed
    assert list_folder(tmp_path / "data", tmp_path / "cache", rescan=True).sizes[0] == 14


def test_the_spot_check_finds_a_file_rewritten_in_place(tmp_path):
    _touch(tmp_path / "data" / "a.png")
    list_folder(tmp_path / "data", tmp_path / "cache")
    (tmp_path / "data" / "a.png").write_bytes(b"grown in place")
    assert list_folder(tmp_path / "data", tmp_path / "cache").sizes[0] == 14


def test_a_new_file_or_a_changed_folder_makes_a_new_listing(tmp_path, monkeypatch):
    monkeypatch.setattr(listing, "SPOT_CHECKS", 0)
    _touch(tmp_path / "data" / "sub" / "a.png")
    list_folder(tmp_path / "data", tmp_path / "cache")
    _touch(tmp_path / "data" / "sub" / "b.png")
    assert list_folder(tmp_path / "data", tmp_path / "cache").members == ("sub/a.png", "sub/b.png")
    (tmp_path / "data" / "sub" / "b.png").unlink()
    assert list_folder(tmp_path / "data", tmp_path / "cache").members == ("sub/a.png",)


def test_a_damaged_manifest_means_a_scan(tmp_path):
    _touch(tmp_path / "data" / "a.png")
    list_folder(tmp_path / "data", tmp_path / "cache")
    for manifest in (tmp_path / "cache" / listing.MANIFEST_FOLDER).iterdir():
        manifest.write_bytes(b"PK\x03\x04 not a zip")
    assert list_folder(tmp_path / "data", tmp_path / "cache").members == ("a.png",)


def test_a_cache_that_cannot_be_written_keeps_no_manifest(tmp_path):
    _touch(tmp_path / "data" / "a.png")
    _touch(tmp_path / "cache", b"a file where the folder should be")
    assert list_folder(tmp_path / "data", tmp_path / "cache").members == ("a.png",)


def test_the_digest_follows_names_sizes_and_mtimes_not_the_path_or_ctime(tmp_path):
    _touch(tmp_path / "data" / "a.png")
    digest = list_folder(tmp_path / "data").digest()
    shutil.copytree(tmp_path / "data", tmp_path / "copy")  # times kept, new inodes
    assert list_folder(tmp_path / "copy").digest() == digest
    os.utime(tmp_path / "copy" / "a.png", ns=(1, 1))
    assert list_folder(tmp_path / "copy").digest() != digest
    (tmp_path / "data" / "a.png").rename(tmp_path / "data" / "b.png")
    assert list_folder(tmp_path / "data").digest() != digest


def test_a_file_replaced_under_the_same_name_changes_its_folders_time_and_is_listed_anew(tmp_path, monkeypatch):
    import time

    monkeypatch.setattr(listing, "SPOT_CHECKS", 0)  # the folder's time alone must tell
    _touch(tmp_path / "data" / "sub" / "a.png")
    list_folder(tmp_path / "data", tmp_path / "cache")
    time.sleep(0.01)
    (tmp_path / "data" / "sub" / "a.png").unlink()
    _touch(tmp_path / "data" / "sub" / "a.png", b"another picture")  # same name, new file: sub/ changed
    assert list_folder(tmp_path / "data", tmp_path / "cache").sizes[0] == 15
