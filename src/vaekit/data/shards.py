"""WebDataset tar shards as data: decoded while training, never cached whole.

A shard is a plain tar whose members are grouped by key (``KEY.jpg``, ``KEY.cls``, ...), the
WebDataset convention, so shards written by ``vaekit shard`` and by webdataset's own writers read
alike. ``--data`` takes a folder of ``.tar`` files, one ``.tar``, a brace pattern
(``shards/train-{000000..000099}.tar``) or, with ``fsspec`` installed, URLs (``s3://...``,
``https://...``). Each shard's member offsets are read from its tar headers once, so any sample is
one seek and one read: a batch decodes just its own images (in ``data.workers`` threads), a rank
reads just its slice, and the order stays the trainer's pure function of (seed, epoch, position).
``vaekit shard`` also writes ``index.json`` beside the shards (the layout of webdataset's ``wids``
index: each shard's name and sample count) for other tools.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from vaekit.data.dataset import ImageDataset, LazyImages
from vaekit.data.images import DataError, ImageFiles
from vaekit.data.labels import folder_classes
from vaekit.data.listing import IMAGE_SUFFIXES
from vaekit.data.reader import DRAFT_RECIPES, UnreadableImage, open_image, upright
from vaekit.data.recipes import RANDOM, prepare
from vaekit.data.registry import DATA_SOURCES, Source
from vaekit.schema import MAX_IMAGE_SIZE

INDEX_FILE = "index.json"
BRACES = re.compile(r"\{(\d+)\.\.(\d+)\}")
MAX_SHARDS = 1_000_000
MAX_MEMBER_BYTES = 256 << 20  # one image inside a shard
OPEN_SHARDS = 8  # shard files each decode thread keeps open (least recently used closed first)
MAX_SHARD_BYTES = 1 << 30  # a shard being written is held in memory: closed at this size, whatever per_shard says


@dataclass(frozen=True)
class Sample:
    """Where one sample's image (and class label) lie: shard number, byte offsets and sizes."""

    shard: int
    offset: int
    size: int
    label_offset: int = -1
    label_size: int = 0


def shard_urls(spec: str) -> list[str]:
    """The shards a spec names: a brace pattern expanded, a folder's ``*.tar`` sorted, or itself."""
    match = BRACES.search(spec)
    if match:
        first, last = match.group(1), match.group(2)
        if int(last) - int(first) + 1 > MAX_SHARDS or int(last) < int(first):
            raise DataError(f"{spec}: {first}..{last} is not a range of at most {MAX_SHARDS:,} shards")
        width = len(first)
        return [
            spec[: match.start()] + f"{i:0{width}d}" + spec[match.end() :] for i in range(int(first), int(last) + 1)
        ]
    path = Path(spec)
    if path.is_dir():
        shards = sorted(str(p) for p in path.glob("*.tar"))
        if not shards:
            raise DataError(f"{spec}: no .tar shards in this folder")
        return shards
    return [spec]


def torch_worker() -> bool:
    """Whether this process is a worker of a torch ``DataLoader``."""
    import torch.utils.data

    return torch.utils.data.get_worker_info() is not None


def _open(url: str):
    if "://" in url:
        from vaekit.optional import require

        fsspec = require("fsspec", "datasets", "reading shards from a URL")
        return fsspec.open(url, "rb").open()
    return open(url, "rb")


def index_shard(url: str, number: int) -> list[Sample]:
    """The samples of one shard, in member order, from its tar headers (data is skipped, not read)."""
    images: dict[str, tuple[int, int]] = {}
    labels: dict[str, tuple[int, int]] = {}
    order: list[str] = []
    try:
        with _open(url) as handle, tarfile.open(fileobj=handle, mode="r:") as tar:  # headers; data is seeked past
            for member in tar:
                if not member.isfile():
                    continue
                name = PurePosixPath(member.name)
                key = str(name.parent / name.name.split(".", 1)[0])
                suffix = "." + name.name.split(".", 1)[1].lower() if "." in name.name else ""
                if suffix in IMAGE_SUFFIXES and key not in images:
                    images[key] = (member.offset_data, member.size)
                    order.append(key)
                elif suffix == ".cls":
                    labels[key] = (member.offset_data, member.size)
    except (OSError, tarfile.TarError, EOFError) as err:
        raise DataError(f"{url}: not a readable tar shard ({err})") from None
    return [Sample(number, *images[key], *labels.get(key, (-1, 0))) for key in order]


class ShardedImages(LazyImages):
    """The images of a list of shards, decoded at ``size`` by ``recipe`` when indexed."""

    def __init__(self, urls: list[str], samples: list[Sample], size: int, recipe: str, channels: int, workers: int):
        self.urls, self.samples = urls, samples
        self.size, self.recipe, self.channels = size, recipe, channels
        self.shape = (len(samples), channels, size, size)
        self.threads = workers  # as configured (0: chosen here)
        self.workers = workers or min(8, os.cpu_count() or 1)
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        self._pid = os.getpid()

    def __getstate__(self) -> dict:  # handles and threads stay in the process that made them
        return {**self.__dict__, "_local": None, "_pool": None, "_pid": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def _bytes(self, shard: int, offset: int, size: int) -> bytes:
        self._own_process()
        handles = self._local.__dict__.setdefault("handles", OrderedDict())
        if shard in handles:
            handles.move_to_end(shard)
        else:
            if len(handles) >= OPEN_SHARDS:  # thousands of shards: never thousands of open files
                handles.popitem(last=False)[1].close()
            handles[shard] = _open(self.urls[shard])
        handle = handles[shard]
        handle.seek(offset)
        if size > MAX_MEMBER_BYTES:
            raise DataError(f"{self.urls[shard]}: a member of {size:,} bytes (at most {MAX_MEMBER_BYTES:,})")
        return handle.read(size)

    def decode(self, position: int, epoch: int | None = None, seed: int = 0) -> np.ndarray:
        """Sample ``position`` at the configured size; a random crop is drawn from (seed, epoch, position)."""
        sample = self.samples[position]
        data = self._bytes(sample.shard, sample.offset, sample.size)
        random_crop = epoch is not None and self.recipe == RANDOM
        rng = np.random.default_rng([seed, epoch, position]) if random_crop else None
        try:
            with open_image(data) as image:
                picture = upright(image, self.size if self.recipe in DRAFT_RECIPES else None)
            return prepare(picture, self.size, self.recipe, self.channels, rng)
        except (UnreadableImage, ValueError) as err:
            raise DataError(f"{self.urls[sample.shard]}: sample {position} cannot be decoded ({err})") from None

    def read(self, positions: np.ndarray, epoch: int | None = None, seed: int = 0) -> np.ndarray:
        out = np.empty((len(positions), *self.shape[1:]), np.uint8)
        self._own_process()
        if len(positions) <= 2 or self.workers == 1:
            for i, position in enumerate(positions):
                out[i] = self.decode(int(position), epoch, seed)
            return out
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="vaekit-decode")
        for i, image in enumerate(self._pool.map(lambda p: self.decode(int(p), epoch, seed), positions)):
            out[i] = image
        return out

    def _own_process(self) -> None:
        """In a forked process (a loader's worker), drop the parent's open shards and thread pool:
        a file offset shared with another process would interleave their reads."""
        if self._pid != os.getpid():
            self._pid, self._local, self._pool = os.getpid(), threading.local(), None
            if torch_worker():  # one decoding thread per worker process: the processes are the parallelism
                self.workers = self.threads or 1

    def labels(self) -> np.ndarray | None:
        """Class labels from ``.cls`` members, when every sample has one."""
        if not self.samples or any(s.label_offset < 0 for s in self.samples):
            return None
        values = [self._bytes(s.shard, s.label_offset, s.label_size).decode().strip() for s in self.samples]
        if not all(re.fullmatch(r"-?\d+", v) for v in values):
            return None
        return np.array([int(v) for v in values], dtype=np.int64)


def load_shards(spec: str, image_size: int, crop: str, channels: int | None, workers: int = 0) -> ImageDataset:
    """A dataset over the shards ``spec`` names, decoded on demand (see the module's docstring)."""
    if not 1 <= image_size <= MAX_IMAGE_SIZE:
        raise DataError(f"data.image_size {image_size} is not 1..{MAX_IMAGE_SIZE}")
    urls = shard_urls(spec)
    samples = [sample for number, url in enumerate(urls) for sample in index_shard(url, number)]
    if not samples:
        raise DataError(f"{spec}: the shards hold no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    images = ShardedImages(urls, samples, image_size, crop, channels or 3, workers)
    if channels is None and _gray(images.decode(0)):  # channels left to the data: one for gray images
        images = ShardedImages(urls, samples, image_size, crop, 1, workers)
    return ImageDataset(images=images, labels=images.labels(), source=spec)


def _gray(image: np.ndarray) -> bool:
    return bool((image[0] == image[1]).all() and (image[1] == image[2]).all())


def _is_shards(path: Path) -> bool:
    return (path.is_file() and path.suffix == ".tar") or (path.is_dir() and any(path.glob("*.tar")))


def is_shard_spec(spec: str) -> bool:
    """A spec no path can stand for: a URL or a brace pattern of shards."""
    return "://" in spec or (BRACES.search(spec) is not None and ".tar" in spec)


def _load(path: Path | None, config) -> ImageDataset:
    raw = config.source.removeprefix("shards:")
    spec = raw if is_shard_spec(raw) else str(path)
    return load_shards(spec, config.image_size, config.crop, config.channels, config.workers)


DATA_SOURCES.add(
    "shards",
    Source(_load, detect=_is_shards),
    summary="WebDataset tar shards (a folder of .tar, a .tar, s-{000..099}.tar, fsspec URLs), decoded while training",
    capabilities={"path"},
)


# ---------------------------------------------------------------------- writing shards
def write_shards(items: Iterable[tuple[str, Path | bytes, int | None]], out: Path, per_shard: int = 1000) -> list[Path]:
    """``items`` (name, file or its bytes, class or None) as tar shards ``out/shard-NNNNNN.tar`` of ``per_shard``
    samples each (members ``KEY.EXT`` and ``KEY.cls``; images kept as their original bytes) and the
    ``index.json`` of their counts. Memory holds one shard (at most ``MAX_SHARD_BYTES``, which closes
    a shard early); each is written beside and renamed, so none is ever half written."""
    from vaekit.io.files import write_atomically

    out.mkdir(parents=True, exist_ok=True)
    written, shardlist, chunk, total, held = [], [], [], 0, 0

    def flush() -> None:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for offset, (name, path, label) in enumerate(chunk):
                key = f"{total - len(chunk) + offset:09d}"
                data = path if isinstance(path, bytes) else path.read_bytes()
                _add(tar, f"{key}{PurePosixPath(name).suffix.lower()}", data)
                if label is not None:
                    _add(tar, f"{key}.cls", str(label).encode())
        shard = write_atomically(out / f"shard-{len(written):06d}.tar", buffer.getvalue())
        written.append(shard)
        shardlist.append({"url": shard.name, "nsamples": len(chunk)})
        chunk.clear()

    for item in items:
        chunk.append(item)
        total += 1
        held += len(item[1]) if isinstance(item[1], bytes) else item[1].stat().st_size
        if len(chunk) == per_shard or held >= MAX_SHARD_BYTES:
            flush()
            held = 0
    if chunk:
        flush()
    index = {"__kind__": "wids-shard-index-v1", "wids_version": 1, "shardlist": shardlist}
    write_atomically(out / INDEX_FILE, json.dumps(index, indent=1) + "\n")
    return written


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def iter_folder(root: Path) -> Iterator[tuple[str, Path, int | None]]:
    """Every image of a folder as training from it would read them (``ImageFiles.scan``: sorted,
    recursive, no ``._`` or ``__MACOSX`` files), with its class number when the images lie in class
    folders."""
    files = ImageFiles.scan(root)
    if files.is_zip:
        raise DataError(f"{files.root}: shard takes a folder of images; unpack the archive first")
    found = folder_classes(list(files.members))
    labels = found[0].tolist() if found is not None else [None] * len(files.members)
    for member, label in zip(files.members, labels, strict=True):
        yield member, files.root / member, label
