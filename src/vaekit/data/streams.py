"""A stream of images as training data: a streaming Hugging Face dataset (``datasets.IterableDataset``),
a ``webdataset`` pipeline, or any torch ``IterableDataset`` of such rows.

A stream has no positions, so it cannot give the order a resumable run needs (a pure function of
seed, epoch and position). It is read once, in order, into WebDataset tar shards in the cache
(memory holds one shard: 1,000 images), and the run trains from those shards, decoded while
training; later runs on the same stream reuse them. The images keep their encoded bytes where the
stream has them and are written as PNG otherwise; an integer ``label`` / ``labels`` / ``cls`` column
becomes the class. A row is a dict (Hugging Face columns, webdataset's ``{"jpg": ..., "cls": ...}``,
decoded or not) or an ``(image, label)`` pair.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm.auto import tqdm

from vaekit.data.cache import cache_root
from vaekit.data.images import DataError
from vaekit.data.shards import INDEX_FILE, write_shards

LABEL_COLUMNS = ("label", "labels", "cls")
IMAGE_KEYS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff", "ppm", "image", "img")
DONE = "stream.json"  # written last: a folder without it is an interrupted conversion


def is_stream(data: Any) -> bool:
    """Whether ``data`` is a stream: a streaming Hugging Face dataset or a torch ``IterableDataset``
    (webdataset's pipelines are ones)."""
    kind = type(data)
    if kind.__module__.startswith("datasets.") and kind.__name__ == "IterableDataset":
        return True
    import torch

    return isinstance(data, torch.utils.data.IterableDataset)


IDENTITY_ROWS = 16  # rows whose bytes name a stream beside its description


def _identity(data: Any) -> str:
    """What names the stream: its dataset, config, split, version and features, and the bytes of
    its first rows (two generator streams with the same features are not taken for one another)."""
    info = getattr(data, "info", None)
    digest = hashlib.sha256()
    for _, encoded, label in itertools.islice(_samples(data), IDENTITY_ROWS):
        digest.update(encoded + str(label).encode())
    parts = {
        "dataset": getattr(info, "dataset_name", None),
        "config": getattr(info, "config_name", None),
        "version": str(getattr(info, "version", None)),
        "split": str(getattr(data, "split", None)),
        "features": str(getattr(data, "features", None)),
        "first_rows": digest.hexdigest(),
    }
    return json.dumps(parts, sort_keys=True)


def _samples(data: Any) -> Iterator[tuple[str, bytes, int | None]]:
    """Each row as (file name, its image's encoded bytes, class or None)."""
    for index, row in enumerate(data):
        if isinstance(row, tuple | list) and len(row) == 2:
            row = {"image": row[0], "label": row[1]}
        if not isinstance(row, dict):
            raise DataError(f"data: row {index} of the stream is a {type(row).__name__}, not a dict or (image, label)")
        key, image = next(((k, v) for k, v in row.items() if _is_image(k, v)), (None, None))
        if image is None:
            raise DataError(f"data: row {index} of the stream holds no image (columns: {', '.join(map(str, row))})")
        label = next((_label(row[name]) for name in LABEL_COLUMNS if _label(row.get(name)) is not None), None)
        if isinstance(image, bytes):  # webdataset's undecoded member: its bytes as they are
            yield f"{index:09d}.{key}", image, label
        elif isinstance(image, dict):  # an undecoded Image feature: its file bytes as they are
            yield f"{index:09d}{Path(image.get('path') or 'x.png').suffix or '.png'}", image["bytes"], label
        else:
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            yield f"{index:09d}.png", buffer.getvalue(), label


def _is_image(key: str, value: Any) -> bool:
    if isinstance(value, bytes):
        return str(key).lower() in IMAGE_KEYS
    return isinstance(value, Image.Image) or (isinstance(value, dict) and isinstance(value.get("bytes"), bytes))


def _label(value: Any) -> int | None:
    """A class number from an int, or from webdataset's undecoded ``.cls`` bytes."""
    if isinstance(value, bytes) and value.strip().lstrip(b"-").isdigit():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def stream_to_shards(data: Any, cache_dir: str | Path | None = None, per_shard: int = 1000) -> Path:
    """The shards folder of ``data``'s images, written on first use (see the module's docstring)."""
    identity = _identity(data)
    folder = cache_root(cache_dir) / "streams" / hashlib.sha256(identity.encode()).hexdigest()[:16]
    if (folder / DONE).is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in [*folder.glob("shard-*.tar"), folder / INDEX_FILE]:  # an interrupted conversion's own files
        leftover.unlink(missing_ok=True)
    rows = tqdm(_samples(data), desc="streaming into shards", unit="img", disable=None)
    written = write_shards(rows, folder, per_shard)
    if not written:
        raise DataError("data: the stream holds no rows")
    (folder / DONE).write_text(identity + "\n")
    return folder
