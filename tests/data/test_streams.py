"""A streaming Hugging Face dataset trains: read once into tar shards in the cache, then decoded
while training like any shards."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import vaekit
from vaekit.config import DataConfig
from vaekit.data import DataError, load_dataset
from vaekit.data.streams import stream_to_shards

datasets = pytest.importorskip("datasets")


def stream(seed: int, rows: int = 30, with_image: bool = True):
    def generate():
        rng = np.random.default_rng(seed)
        for i in range(rows):
            pixels = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
            yield {"image": Image.fromarray(pixels), "label": i % 3} if with_image else {"text": "x", "label": i}

    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.Value("int64")}
        if with_image
        else {"text": datasets.Value("string"), "label": datasets.Value("int64")}
    )
    return datasets.IterableDataset.from_generator(generate, features=features)


def test_a_stream_trains_from_shards_written_once_and_records_them(tmp_path):
    run = vaekit.train(data=stream(0), out=tmp_path / "run", overrides=["data.image_size=16", "train.max_steps=2"])
    source = vaekit.load(run).config.data.source
    shards = load_dataset(DataConfig(source=source, image_size=20, crop="none"))
    assert len(shards) == 30 and shards.labels.tolist() == [i % 3 for i in range(30)]
    first = np.asarray(next(iter(stream(0)))["image"])
    assert np.array_equal(
        shards.images[0].transpose(1, 2, 0),
        np.asarray(Image.fromarray(first).resize((20, 20), Image.Resampling.LANCZOS)),
    )
    assert stream_to_shards(stream(0)) == stream_to_shards(stream(0))  # read once, then reused
    assert stream_to_shards(stream(1)) != stream_to_shards(stream(0))  # same features, other rows: not mistaken


def test_a_stream_without_images_is_one_line():
    with pytest.raises(DataError, match="holds no image"):
        stream_to_shards(stream(0, with_image=False))


def test_a_webdataset_pipeline_streams_in_decoded_or_not(tmp_path):
    wds = pytest.importorskip("webdataset")
    from vaekit.data.shards import write_shards

    rng = np.random.default_rng(3)
    items = []
    for i in range(12):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (18, 18, 3), dtype=np.uint8)).save(buffer, format="PNG")
        items.append((f"{i}.png", buffer.getvalue(), i % 4))
    source = write_shards(items, tmp_path / "source", per_shard=5)
    urls = [str(path) for path in source]
    raw = stream_to_shards(wds.WebDataset(urls, shardshuffle=False), tmp_path / "cache")
    decoded = stream_to_shards(wds.WebDataset(urls, shardshuffle=False).decode("pil"), tmp_path / "cache")
    for folder in (raw, decoded):
        data = load_dataset(DataConfig(source=str(folder), image_size=18, crop="none"))
        original = load_dataset(DataConfig(source=str(tmp_path / "source"), image_size=18, crop="none"))
        assert data.labels.tolist() == [i % 4 for i in range(12)]
        assert np.array_equal(np.asarray(data.images), np.asarray(original.images))  # PNG: lossless either way


def test_an_interrupted_conversion_is_not_taken_as_complete_and_is_redone_whole(tmp_path):
    rows = list(stream(2))

    def broken():
        for i, row in enumerate(rows):
            if i == 12:
                raise KeyboardInterrupt
            yield row

    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    half = datasets.IterableDataset.from_generator(broken, features=features)
    whole = datasets.IterableDataset.from_generator(lambda: iter(rows), features=features)
    with pytest.raises(KeyboardInterrupt):
        stream_to_shards(half, tmp_path, per_shard=5)  # two shards written, then the stream broke
    folder = stream_to_shards(whole, tmp_path, per_shard=5)
    assert len(load_dataset(DataConfig(source=str(folder), image_size=16, cache_dir=str(tmp_path)))) == 30


def test_the_same_images_with_other_labels_are_another_stream(tmp_path):
    def relabelled(offset):
        def generate():
            for i, row in enumerate(stream(4)):
                yield {"image": row["image"], "label": (i + offset) % 3}

        features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
        return datasets.IterableDataset.from_generator(generate, features=features)

    first, second = stream_to_shards(relabelled(0), tmp_path), stream_to_shards(relabelled(1), tmp_path)
    assert first != second
    labels = load_dataset(DataConfig(source=str(second), image_size=16, cache_dir=str(tmp_path))).labels
    assert labels.tolist() == [(i + 1) % 3 for i in range(30)]
