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

import hashlib
import io
import json
import os
import re
import tarfile
import threading
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import numpy as np

from vaekit.data.cache import cache_root, keep_arrays, kept_arrays
from vaekit.data.dataset import ImageDataset, LazyImages
from vaekit.data.images import DataError, ImageFiles, read_member
from vaekit.data.labels import folder_classes
from vaekit.data.listing import IMAGE_SUFFIXES
from vaekit.data.reader import DRAFT_RECIPES, UnreadableImage, open_image, upright
from vaekit.data.recipes import RANDOM, prepare
from vaekit.data.registry import DATA_SOURCES, Source
from vaekit.io.files import write_atomically
from vaekit.schema import MAX_CONFIG_BYTES, MAX_IMAGE_SIZE, ConfigError, read_bounded

INDEX_FILE = "index.json"
BRACES = re.compile(r"\{(\d+)\.\.(\d+)\}")
MAX_SHARDS = 1_000_000
MAX_MEMBER_BYTES = 256 << 20  # one image inside a shard
MAX_BROKEN_RUN = 16  # broken samples in a row that stop training (one alone is skipped with a warning)
OPEN_SHARDS = 8  # shard files each decode thread keeps open (least recently used closed first)
MAX_SHARD_BYTES = 1 << 30  # a shard being written is held in memory: closed at this size, whatever per_shard says
MAX_LABEL_BYTES = 256  # a .cls member (a class number as text)
INDEX_FOLDER = "shard-index"  # in the cache: each shard's index, kept between starts


@dataclass(frozen=True)
class ShardIndex:
    """The samples of one shard in member order: image data offsets and sizes, and the text of each
    sample's ``.cls`` member ("" where it has none)."""

    offsets: np.ndarray
    sizes: np.ndarray
    labels: np.ndarray


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
        listed = _listed_shards(path)
        shards = sorted(str(p) for p in path.glob("*.tar"))
        if listed is not None:
            others = sorted(set(shards) - set(listed))
            if others:
                warnings.warn(
                    f"{spec}: {len(others)} .tar file(s) not in its {INDEX_FILE} are not read "
                    f"(e.g. {Path(others[0]).name}): the shards are the ones vaekit shard listed",
                    stacklevel=2,
                )
            return listed
        if not shards:
            raise DataError(f"{spec}: no .tar shards in this folder")
        return shards
    return [spec]


def _listed_shards(folder: Path) -> list[str] | None:
    """The shards ``folder``'s index (as ``vaekit shard`` writes it) lists, or None without one."""
    index = folder / INDEX_FILE
    if not index.is_file():
        return None
    try:
        entries = json.loads(read_bounded(index, MAX_CONFIG_BYTES))["shardlist"]
        names = [str(entry["url"]) for entry in entries]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"{index}: not a readable shard index ({err})") from None
    if not names or any("/" in name or not name.endswith(".tar") for name in names):
        raise DataError(f"{index}: lists no shards of this folder")
    return [str(folder / name) for name in names]


def default_decode_threads() -> int:
    """Decode threads of one process: the CPUs shared among the processes torchrun starts on this
    machine (``LOCAL_WORLD_SIZE``), at most 8."""
    local_world = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    return max(1, min(8, (os.cpu_count() or 1) // local_world))


def torch_worker() -> bool:
    """Whether this process is a worker of a torch ``DataLoader``."""
    import torch.utils.data

    return torch.utils.data.get_worker_info() is not None


def _open(url: str, samples: bool = False):
    """A shard as a binary file; from a URL with ``fsspec``, read ahead in blocks to walk its
    headers, or, to read ``samples``, each read one ranged request of just its bytes (a block cache
    would fetch megabytes around each image)."""
    if "://" in url:
        from vaekit.optional import require

        fsspec = require("fsspec", "datasets", "reading shards from a URL")
        return fsspec.open(url, "rb", **({"cache_type": "none"} if samples else {})).open()
    return open(url, "rb")


def index_shard(url: str) -> ShardIndex:
    """One shard's samples from its tar headers (image data is seeked past; ``.cls`` members,
    a few bytes each, are read on the way)."""
    images: dict[str, tuple[int, int]] = {}
    labels: dict[str, str] = {}
    try:
        with _open(url) as handle, tarfile.open(fileobj=handle, mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = PurePosixPath(member.name)
                key = str(name.parent / name.name.split(".", 1)[0])
                suffix = "." + name.name.split(".", 1)[1].lower() if "." in name.name else ""
                if suffix in IMAGE_SUFFIXES and key not in images:
                    images[key] = (member.offset_data, member.size)
                elif suffix == ".cls" and member.size <= MAX_LABEL_BYTES:
                    labels[key] = tar.extractfile(member).read().decode("utf-8", "replace").strip()
    except (OSError, tarfile.TarError, EOFError) as err:
        raise DataError(f"{url}: not a readable tar shard ({err})") from None
    places = np.array(list(images.values()), np.int64).reshape(-1, 2)
    return ShardIndex(places[:, 0], places[:, 1], np.array([labels.get(key, "") for key in images], dtype=str))


def _identity(url: str) -> str | None:
    """What changes when a shard does (size and modification time, or the server's ETag)."""
    try:
        if "://" not in url:
            stat = os.stat(url)
            return f"{stat.st_size}:{stat.st_mtime_ns}"
        import fsspec

        info = fsspec.core.url_to_fs(url)[0].info(url)
    except (OSError, ValueError, ImportError):
        return None
    stamp = next((info[k] for k in ("ETag", "etag", "LastModified", "mtime", "last_modified") if info.get(k)), None)
    return f"{info.get('size')}:{stamp}" if stamp is not None else None


def cached_index(url: str, cache: Path | None) -> ShardIndex:
    """``index_shard(url)``, kept in ``cache`` under the shard's identity, so that a start over many
    shards reads one small file per shard instead of every tar header (each a request for a URL)."""
    identity = _identity(url) if cache is not None else None
    if identity is None:
        return index_shard(url)
    path = cache / INDEX_FOLDER / f"{hashlib.sha256(f'{url}|{identity}'.encode()).hexdigest()[:32]}.npz"
    kept = kept_arrays(path, "offsets", "sizes", "labels")
    if kept is not None:
        return ShardIndex(**kept)
    found = index_shard(url)
    keep_arrays(path, offsets=found.offsets, sizes=found.sizes, labels=found.labels)
    return found


class ShardedImages(LazyImages):
    """The images of a list of shards, decoded at ``size`` by ``recipe`` when indexed."""

    def __init__(self, urls: list[str], indexes: list[ShardIndex], size: int, recipe: str, channels: int, workers: int):
        self.urls = urls
        self.shard = np.repeat(np.arange(len(indexes), dtype=np.int32), [len(i.offsets) for i in indexes])
        self.offsets = np.concatenate([i.offsets for i in indexes]) if indexes else np.zeros(0, np.int64)
        self.sizes = np.concatenate([i.sizes for i in indexes]) if indexes else np.zeros(0, np.int64)
        self.label_texts = np.concatenate([i.labels for i in indexes]) if indexes else np.zeros(0, str)
        self.size, self.recipe, self.channels = size, recipe, channels
        self.shape = (len(self.offsets), channels, size, size)
        self.threads = workers  # as configured (0: chosen here)
        self.workers = workers or default_decode_threads()
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        self._pid = os.getpid()
        self._warned: set[int] = set()  # broken samples already reported by this process

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
            handles[shard] = _open(self.urls[shard], samples=True)
        handle = handles[shard]
        handle.seek(offset)
        if size > MAX_MEMBER_BYTES:
            raise DataError(f"{self.urls[shard]}: a member of {size:,} bytes (at most {MAX_MEMBER_BYTES:,})")
        try:
            return handle.read(size)
        except ValueError as err:
            if "range" not in str(err).lower():
                raise
            host = urlsplit(self.urls[shard]).hostname or self.urls[shard]
            raise DataError(
                f"{host} does not answer byte ranges, which reading one sample of a shard needs (object stores "
                "and most web servers do; python -m http.server does not): serve the shards from one that does, "
                "or copy them here"
            ) from None

    def decode(self, position: int, epoch: int | None = None, seed: int = 0) -> np.ndarray:
        """Sample ``position`` at the configured size; a random crop is drawn from (seed, epoch, position)."""
        shard = int(self.shard[position])
        data = self._bytes(shard, int(self.offsets[position]), int(self.sizes[position]))
        random_crop = epoch is not None and self.recipe == RANDOM
        rng = np.random.default_rng([seed, epoch, position]) if random_crop else None
        try:
            with open_image(data) as image:
                picture = upright(image, self.size if self.recipe in DRAFT_RECIPES else None)
            return prepare(picture, self.size, self.recipe, self.channels, rng)
        except (UnreadableImage, ValueError) as err:
            raise DataError(f"{self.urls[shard]}: sample {position} cannot be decoded ({err})") from None

    def read(self, positions: np.ndarray, epoch: int | None = None, seed: int = 0) -> np.ndarray:
        out = np.empty((len(positions), *self.shape[1:]), np.uint8)
        self._own_process()
        if len(positions) <= 2 or self.workers == 1:
            for i, position in enumerate(positions):
                out[i] = self.readable(int(position), epoch, seed)
            return out
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="vaekit-decode")
        for i, image in enumerate(self._pool.map(lambda p: self.readable(int(p), epoch, seed), positions)):
            out[i] = image
        return out

    def readable(self, position: int, epoch: int | None = None, seed: int = 0) -> np.ndarray:
        """Sample ``position``, or where it cannot be decoded the next sample that can, with one
        warning per broken sample: a batch keeps its size and a resume sees the same stand-in.
        More than ``MAX_BROKEN_RUN`` broken samples in a row are an error (damaged shards)."""
        for step in range(MAX_BROKEN_RUN + 1):
            candidate = (position + step) % len(self)
            try:
                return self.decode(candidate, epoch, seed)
            except DataError as err:
                if candidate not in self._warned:
                    self._warned.add(candidate)
                    warnings.warn(f"{err}; the next readable sample stands in for it", stacklevel=2)
        raise DataError(
            f"{self.urls[int(self.shard[position])]}: {MAX_BROKEN_RUN + 1} samples in a row from sample {position}"
            " cannot be decoded; the shards look damaged"
        )

    def _own_process(self) -> None:
        """In a forked process (a loader's worker), drop the parent's open shards and thread pool:
        a file offset shared with another process would interleave their reads."""
        if self._pid != os.getpid():
            self._pid, self._local, self._pool = os.getpid(), threading.local(), None
            if torch_worker():  # one decoding thread per worker process: the processes are the parallelism
                self.workers = self.threads or 1

    def labels(self) -> np.ndarray | None:
        """Class labels from ``.cls`` members, when every sample has an integer one."""
        texts = self.label_texts
        distinct = np.unique(texts)
        if not len(texts) or not all(re.fullmatch(r"-?\d+", str(t)) for t in distinct):
            return None
        too_large = [str(t) for t in distinct if abs(int(str(t))) > np.iinfo(np.int64).max]
        if too_large:
            raise DataError(f"{self.urls[0]}...: a .cls label {too_large[0][:30]} does not fit 64 bits")
        return texts.astype(np.int64)


def load_shards(
    spec: str, image_size: int, crop: str, channels: int | None, workers: int = 0, cache: Path | None = None
) -> ImageDataset:
    """A dataset over the shards ``spec`` names, decoded on demand (see the module's docstring);
    ``cache``: where each shard's index is kept between starts."""
    if not 1 <= image_size <= MAX_IMAGE_SIZE:
        raise DataError(f"data.image_size {image_size} is not 1..{MAX_IMAGE_SIZE}")
    urls = shard_urls(spec)
    remote = any("://" in url for url in urls)  # requests that wait on a network overlap; local reads need no threads
    with ThreadPoolExecutor(min(16, len(urls)) if remote else 1, thread_name_prefix="vaekit-index") as pool:
        indexes = list(pool.map(lambda url: cached_index(url, cache), urls))
    if not sum(len(index.offsets) for index in indexes):
        raise DataError(f"{spec}: the shards hold no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    images = ShardedImages(urls, indexes, image_size, crop, channels or 3, workers)
    if channels is None and _gray(images.decode(0)):  # channels left to the data: one for gray images
        images.channels, images.shape = 1, (images.shape[0], 1, *images.shape[2:])
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
    return load_shards(
        spec, config.image_size, config.crop, config.channels, config.workers, cache_root(config.cache_dir)
    )


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
    out.mkdir(parents=True, exist_ok=True)
    present = sorted(p.name for p in out.glob("*.tar")) + ([INDEX_FILE] if (out / INDEX_FILE).exists() else [])
    if present:
        raise ConfigError(
            f"{out} holds shards already ({', '.join(present[:3])}{', ...' if len(present) > 3 else ''}): "
            "write into an empty folder (training from it would mix old and new)"
        )
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


def iter_folder(root: Path | ImageFiles) -> Iterator[tuple[str, Path | bytes, int | None]]:
    """Every image of a folder or zip as training from it would read them (``ImageFiles.scan``:
    sorted, recursive, no ``._`` or ``__MACOSX`` files; a zip's members as their bytes), with its
    class number when the images lie in class folders."""
    files = root if isinstance(root, ImageFiles) else ImageFiles.scan(root)
    found = folder_classes(list(files.members))
    labels = found[0].tolist() if found is not None else [None] * len(files.members)
    if not files.is_zip:
        for member, label in zip(files.members, labels, strict=True):
            yield member, files.root / member, label
        return
    with zipfile.ZipFile(files.root) as archive:
        for member, label in zip(files.members, labels, strict=True):
            yield member, read_member(archive, member), label
