"""WebDataset tar shards: written by ``vaekit shard``, read by seeking to each sample, decoded while
training, and the same images as the folder they came from."""

from __future__ import annotations

import io
import os
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from tests.helpers import tiny_config
from tests.range_server import serve_with_ranges
from vaekit.cli import main
from vaekit.config import DataConfig
from vaekit.data import DataError, load_dataset
from vaekit.data.labels import classes_from_folders
from vaekit.training.trainer import Trainer


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (root / name).mkdir()
        for i in range(15):
            picture = Image.fromarray(rng.integers(0, 256, (36, 44, 3), dtype=np.uint8))
            picture.save(root / name / f"{i:02d}.{'jpg' if i % 2 else 'png'}")
    return root


@pytest.fixture(scope="module")
def shards(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards") / "s"
    assert main(["shard", str(folder), "-o", str(out), "--per-shard", "8"]) == 0
    return out


def test_shards_hold_the_folders_images_and_classes_in_webdataset_layout(folder, shards):
    assert sorted(p.name for p in shards.iterdir()) == ["index.json", *(f"shard-{i:06d}.tar" for i in range(4))]
    with tarfile.open(shards / "shard-000000.tar") as tar:
        assert tar.getnames()[:4] == ["000000000.png", "000000000.cls", "000000001.jpg", "000000001.cls"]
    from_shards = load_dataset(DataConfig(source=str(shards), image_size=16))
    from_folder = classes_from_folders(load_dataset(DataConfig(source=str(folder), image_size=16)))
    assert np.array_equal(np.asarray(from_shards.images), np.asarray(from_folder.images))  # one decoder, one recipe
    assert from_shards.labels.tolist() == from_folder.labels.tolist()


def test_a_brace_pattern_and_a_file_url_name_shards_too(shards):
    two = load_dataset(DataConfig(source=str(shards / "shard-{000000..000001}.tar"), image_size=16))
    assert len(two) == 16
    url = load_dataset(DataConfig(source=(shards / "shard-000003.tar").as_uri(), image_size=16))
    whole = load_dataset(DataConfig(source=str(shards), image_size=16))
    assert np.array_equal(url.images[:], whole.images[24:])


def test_a_broken_shard_is_one_line(tmp_path):
    (tmp_path / "bad.tar").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(DataError, match="not a readable tar shard"):
        load_dataset(DataConfig(source=str(tmp_path / "bad.tar"), image_size=16))


def test_training_from_shards_stops_and_resumes_to_the_same_weights(shards, tmp_path):
    config = tiny_config(**{"data.source": str(shards), "train.batch_size": 8, "train.epochs": 2})
    straight = Trainer(config, tmp_path / "straight").fit()
    Trainer(config.with_overrides({"train.max_steps": 3}), tmp_path / "resumed").fit()
    resumed = Trainer(config, tmp_path / "resumed", resume=True).fit()
    a, b = (load_file(str(run / "model" / "model.safetensors")) for run in (straight, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_random_crops_are_drawn_anew_each_epoch_the_same_on_a_resume_and_centred_outside_training(shards):
    from vaekit.data.dataset import read_rows
    from vaekit.data.loader import BatchLoader

    dataset = load_dataset(DataConfig(source=str(shards), image_size=16, crop="random"))
    train = dataset.split("train", 0.1, 0)
    loader = BatchLoader(train.images, 8, seed=1, prefetch=2)
    first, again, second = (next(loader.epoch(e)) for e in (0, 0, 1))
    assert torch.equal(first, again)  # a pure function of (seed, epoch, position): resumes see the same crops
    positions = loader.order(1)[:8]
    assert not torch.equal(
        torch.from_numpy(read_rows(train.images, np.sort(positions), epoch=1)),
        torch.from_numpy(read_rows(train.images, np.sort(positions), epoch=2)),
    )
    centred = load_dataset(DataConfig(source=str(shards), image_size=16, crop="center"))
    assert np.array_equal(dataset.images[:4], centred.images[:4])  # evaluation and grids: the centre square
    assert second.shape == first.shape == (8, 3, 16, 16)


def test_a_random_crop_of_a_folder_that_is_cached_once_is_refused_with_the_way_to_shards(folder):
    with pytest.raises(DataError, match="vaekit shard"):
        load_dataset(DataConfig(source=str(folder), image_size=16, crop="random"))


def test_a_shard_is_closed_early_when_it_would_hold_more_than_its_byte_limit(folder, tmp_path, monkeypatch):
    import vaekit.data.shards as shards_module

    monkeypatch.setattr(shards_module, "MAX_SHARD_BYTES", 4000)  # a few of the test's images
    written = shards_module.write_shards(shards_module.iter_folder(folder), tmp_path / "s", per_shard=1000)
    assert len(written) > 3 and len(load_dataset(DataConfig(source=str(tmp_path / "s"), image_size=16))) == 30


def test_a_decode_thread_keeps_only_a_few_shard_files_open(shards, monkeypatch):
    import vaekit.data.shards as shards_module

    monkeypatch.setattr(shards_module, "OPEN_SHARDS", 2)
    data = load_dataset(DataConfig(source=str(shards), image_size=16))
    images = data.images
    for position in range(len(images)):  # every shard in turn, on this thread
        images.decode(position)
    assert len(images._local.handles) == 2
    assert np.array_equal(images[np.arange(30)], load_dataset(DataConfig(source=str(shards), image_size=16)).images[:])


def test_worker_processes_serve_the_batches_a_thread_serves_epoch_after_epoch(shards):
    from vaekit.data.loader import BatchLoader

    train = load_dataset(DataConfig(source=str(shards), image_size=16, crop="random")).split("train", 0.1, 0)
    threaded = BatchLoader(train.images, 8, seed=1, flip=True, prefetch=2, shard=(1, 2))
    workers = BatchLoader(train.images, 8, seed=1, flip=True, prefetch=2, shard=(1, 2), processes=2)
    for epoch, start in ((0, 0), (1, 1), (2, 2)):  # the same two worker processes for every epoch
        expected = list(threaded.epoch(epoch, start))
        served = list(workers.epoch(epoch, start))
        assert len(served) == len(expected) == 3 - start
        assert all(torch.equal(a, b) for a, b in zip(served, expected, strict=True))


def test_random_crops_follow_the_runs_seed(shards):
    from vaekit.data.dataset import read_rows

    images = load_dataset(DataConfig(source=str(shards), image_size=16, crop="random")).images
    positions = np.arange(6)
    crops = [read_rows(images, positions, epoch=0, seed=seed) for seed in (0, 0, 1)]
    assert np.array_equal(crops[0], crops[1]) and not np.array_equal(crops[0], crops[2])


def test_training_with_loader_processes_ends_at_the_weights_of_a_thread_loader(shards, tmp_path):
    config = tiny_config(**{"data.source": str(shards), "train.batch_size": 8, "train.max_steps": 3})
    runs = [Trainer(config.with_overrides({"data.processes": n}), tmp_path / f"p{n}").fit() for n in (0, 2)]
    a, b = (load_file(str(run / "model" / "model.safetensors")) for run in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_each_shards_index_is_kept_in_the_cache_until_the_shard_changes(folder, tmp_path, monkeypatch):
    import vaekit.data.shards as shards_module

    assert main(["shard", str(folder), "-o", str(tmp_path / "s"), "--per-shard", "16"]) == 0
    config = DataConfig(source=str(tmp_path / "s"), image_size=16, cache_dir=str(tmp_path / "cache"))
    first = load_dataset(config)
    index, indexed = shards_module.index_shard, []
    monkeypatch.setattr(shards_module, "index_shard", lambda url: indexed.append(url) or index(url))
    again = load_dataset(config)
    assert indexed == []  # no tar header read: both indexes came from the cache
    assert np.array_equal(np.asarray(again.images), np.asarray(first.images))
    assert again.labels.tolist() == first.labels.tolist() == [0] * 15 + [1] * 15
    (tmp_path / "s" / "shard-000001.tar").write_bytes((tmp_path / "s" / "shard-000001.tar").read_bytes())
    os.utime(tmp_path / "s" / "shard-000001.tar", ns=(1, 1))
    load_dataset(config)
    assert indexed == [str(tmp_path / "s" / "shard-000001.tar")]  # the changed shard only


def test_shards_over_http_read_just_each_samples_bytes_and_keep_their_index(shards, tmp_path):
    pytest.importorskip("fsspec")
    pytest.importorskip("aiohttp", reason="http:// shard URLs need aiohttp (the datasets extra)")
    server, handler = serve_with_ranges(shards)
    try:
        url = f"http://127.0.0.1:{server.server_port}/shard-{{000000..000003}}.tar"
        config = DataConfig(source=url, image_size=16, cache_dir=str(tmp_path))
        remote = load_dataset(config)
        local = load_dataset(DataConfig(source=str(shards), image_size=16))
        handler.sent = 0
        positions = np.array([0, 9, 17, 29])
        assert np.array_equal(remote.images[positions], local.images[positions])
        assert handler.sent == sum(int(remote.images.sizes[p]) for p in positions)  # one range per image
        handler.sent = 0
        assert load_dataset(config).labels.tolist() == local.labels.tolist()
        assert handler.sent == remote.images.sizes[0]  # the index kept: only the first image, to see if it is gray
    finally:
        server.shutdown()


def test_a_zip_of_images_shards_as_its_folder_does(folder, tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "photos.zip", "w") as archive:
        for path in sorted(folder.rglob("*.*")):
            archive.write(path, path.relative_to(folder).as_posix())
    for source, out in ((folder, "from-folder"), (tmp_path / "photos.zip", "from-zip")):
        assert main(["shard", str(source), "-o", str(tmp_path / out)]) == 0
    from_zip, from_folder = (load_dataset(DataConfig(source=str(tmp_path / out), image_size=16))
                             for out in ("from-zip", "from-folder"))  # fmt: skip
    assert np.array_equal(np.asarray(from_zip.images), np.asarray(from_folder.images))
    assert from_zip.labels.tolist() == from_folder.labels.tolist()


def _shards_with_a_truncated_sample(out, broken=5):
    import vaekit.data.shards as shards_module

    def items():
        rng = np.random.default_rng(0)
        for i in range(12):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(buffer, "PNG")
            yield f"{i}.png", buffer.getvalue()[: 60 if i == broken else None], None

    shards_module.write_shards(items(), out, per_shard=6)
    return out


def test_a_broken_sample_is_warned_once_and_the_next_readable_one_stands_in(tmp_path):
    shards = _shards_with_a_truncated_sample(tmp_path / "s")
    images = load_dataset(DataConfig(source=str(shards), image_size=16, channels=3)).images
    with pytest.warns(UserWarning, match="sample 5 cannot be decoded.*stands in") as caught:
        first = images[np.arange(12)]
    again = images[np.arange(12)]  # the same stand-in, and no second warning for it
    assert len(caught) == 1 and np.array_equal(first, again) and np.array_equal(first[5], first[6])


def test_an_error_in_a_loader_worker_process_is_its_own_one_line(tmp_path):
    from vaekit.data.loader import BatchLoader

    shards = _shards_with_a_truncated_sample(tmp_path / "s", broken=-1)
    images = load_dataset(DataConfig(source=str(shards), image_size=16, channels=3)).images
    (shards / "shard-000001.tar").unlink()  # gone after the start
    loader = BatchLoader(images, 12, processes=2, shuffle=False)
    with pytest.raises(FileNotFoundError) as failed:
        list(loader.epoch(0))
    assert "shard-000001.tar" in str(failed.value) and "\n" not in str(failed.value)


def test_decode_threads_share_the_machine_among_torchruns_processes(monkeypatch):
    from vaekit.data.shards import default_decode_threads

    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert default_decode_threads() == 8  # at most 8
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert default_decode_threads() == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "32")
    assert default_decode_threads() == 1


def test_shard_refuses_a_folder_that_holds_shards_already(folder, shards, capsys):
    before = sorted(p.name for p in shards.iterdir())
    assert main(["shard", str(folder), "-o", str(shards), "--per-shard", "100"]) == 2
    assert "holds shards already" in capsys.readouterr().err
    assert sorted(p.name for p in shards.iterdir()) == before


def test_a_folder_with_an_index_trains_on_the_shards_it_lists_only(shards, tmp_path):
    import shutil

    mixed = tmp_path / "mixed"
    shutil.copytree(shards, mixed)
    shutil.copy(mixed / "shard-000000.tar", mixed / "shard-000099.tar")  # a stale shard beside them
    with pytest.warns(UserWarning, match=r"1 \.tar file\(s\) not in its index.json are not read"):
        data = load_dataset(DataConfig(source=str(mixed), image_size=16))
    assert len(data) == 30  # the 30 images the index lists, not 38
    (mixed / "index.json").write_text("{damaged")
    with pytest.raises(DataError, match="not a readable shard index"):
        load_dataset(DataConfig(source=str(mixed), image_size=16, cache_dir=str(tmp_path / "c")))


def test_a_server_that_does_not_answer_byte_ranges_is_one_line_naming_it(shards, tmp_path):
    import functools
    import http.server
    import threading

    pytest.importorskip("fsspec")
    pytest.importorskip("aiohttp", reason="http:// shard URLs need aiohttp (the datasets extra)")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(shards))  # no ranges
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/shard-{{000000..000001}}.tar"
        with pytest.raises(DataError, match=r"127\.0\.0\.1 does not answer byte ranges") as refused:
            data = load_dataset(DataConfig(source=url, image_size=16, cache_dir=str(tmp_path)))
            data.images[np.array([0, 9])]
        assert "\n" not in str(refused.value)
    finally:
        server.shutdown()


def test_two_shards_of_equal_size_and_time_keep_indexes_of_their_own(shards, tmp_path):
    import shutil

    from vaekit.data.shards import cached_index

    twin = tmp_path / "twin"
    twin.mkdir()
    first, second = twin / "a.tar", twin / "b.tar"
    shutil.copy(shards / "shard-000000.tar", first)
    data = bytearray(first.read_bytes())
    with tarfile.open(first) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".cls"))
    data[member.offset_data] = ord("1") if data[member.offset_data] == ord("0") else ord("0")  # one label differs
    second.write_bytes(bytes(data))
    stamp = first.stat().st_mtime_ns
    os.utime(second, ns=(stamp, stamp))
    cache = tmp_path / "cache"
    a, b = cached_index(str(first), cache), cached_index(str(second), cache)
    assert a.labels.tolist() != b.labels.tolist()


def test_a_split_of_shard_images_decodes_the_rows_of_that_split(folder, shards):
    from_shards = load_dataset(DataConfig(source=str(shards), image_size=16))
    from_folder = load_dataset(DataConfig(source=str(folder), image_size=16))
    for which in ("train", "val"):
        lazy = from_shards.split(which, 0.2, seed=5)
        eager = from_folder.split(which, 0.2, seed=5)
        assert np.array_equal(np.asarray(lazy.images), np.asarray(eager.images)), which
        positions = np.array([len(lazy) - 1, 0])
        assert np.array_equal(lazy.images[positions], eager.images[positions]), which


def test_labels_come_from_cls_members_only_when_every_sample_has_one(shards, tmp_path):
    import shutil

    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("shard-000000.tar", "shard-000001.tar"):
        shutil.copy(shards / name, partial / name)
    with tarfile.open(shards / "shard-000002.tar") as source, tarfile.open(partial / "shard-000002.tar", "w") as out:
        for member in source.getmembers():
            if not member.name.endswith(".cls"):  # this shard's samples have no labels
                out.addfile(member, source.extractfile(member))
    assert load_dataset(DataConfig(source=str(partial), image_size=16)).labels is None
    assert load_dataset(DataConfig(source=str(shards), image_size=16)).labels is not None


def _gray_shards(folder):
    from vaekit.data.shards import write_shards

    rng = np.random.default_rng(1)
    items = []
    for i in range(6):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8), mode="L").save(buffer, format="PNG")
        items.append((f"{i}.png", buffer.getvalue(), None))
    write_shards(items, folder, per_shard=3)
    return folder


def test_gray_shards_give_one_channel_unless_three_are_asked_for(tmp_path):
    shards = _gray_shards(tmp_path / "gray")
    assert load_dataset(DataConfig(source=str(shards), image_size=16)).image_shape == (1, 16, 16)
    colour = load_dataset(DataConfig(source=str(shards), image_size=16, channels=3))
    assert colour.image_shape == (3, 16, 16) and np.asarray(colour.images).shape[1] == 3


def test_a_broken_last_sample_is_stood_in_for_by_the_first(tmp_path):
    shards = _gray_shards(tmp_path / "gray")
    with tarfile.open(shards / "shard-000001.tar") as tar:
        last = tar.getmembers()[-1]
    data = bytearray((shards / "shard-000001.tar").read_bytes())
    data[last.offset_data : last.offset_data + last.size] = b"\0" * last.size  # the last image unreadable
    (shards / "shard-000001.tar").write_bytes(bytes(data))
    images = load_dataset(DataConfig(source=str(shards), image_size=16, cache_dir=str(tmp_path / "c"))).images
    with pytest.warns(UserWarning, match="the next readable sample stands in"):
        assert np.array_equal(images[np.array([5])], images[np.array([0])])


def test_a_member_over_the_size_cap_is_refused_unread(tmp_path, monkeypatch):
    from vaekit.data import shards as shards_module

    shards = _gray_shards(tmp_path / "gray")
    images = load_dataset(DataConfig(source=str(shards), image_size=16, cache_dir=str(tmp_path / "c"))).images
    monkeypatch.setattr(shards_module, "MAX_MEMBER_BYTES", 10)
    with pytest.raises(DataError, match="at most 10"):
        images.decode(0)


def test_a_class_label_too_large_for_64_bits_is_one_line_naming_the_shards(tmp_path):
    from vaekit.data.shards import write_shards

    rng = np.random.default_rng(2)
    items = []
    for i, label in enumerate([0, 1, 99999999999999999999999]):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(buffer, format="PNG")
        items.append((f"{i}.png", buffer.getvalue(), label))
    write_shards(items, tmp_path / "big", per_shard=3)
    with pytest.raises(DataError, match="does not fit 64 bits") as refused:
        _ = load_dataset(DataConfig(source=str(tmp_path / "big"), image_size=8, cache_dir=str(tmp_path / "c"))).labels
    assert "\n" not in str(refused.value)
