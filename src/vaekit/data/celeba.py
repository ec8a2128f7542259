"""CelebA: aligned face images (folder or zip) with their 40 binary attributes and a split."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np

from vaekit.data.cache import cache_root
from vaekit.data.dataset import TEST, TRAIN, ImageDataset
from vaekit.data.images import DataError, ImageFiles, load_image_files, read_text
from vaekit.data.registry import DATA_SOURCES, Source, decode_options


def is_celeba_folder(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("list_attr_celeba*.txt"))


def read_attributes(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """``list_attr_celeba.txt``: (attribute names, {file name: 0/1 int8 vector}).

    Accepts the original layout (count line, names line, rows of ``name ±1 ...``) and the
    common variant without the count line.
    """
    lines = [line for line in read_text(path).splitlines() if line.strip()]
    if lines and lines[0].strip().isdigit():
        lines = lines[1:]
    if not lines:
        raise DataError(f"{path}: empty attribute file")
    names = lines[0].split()
    rows: dict[str, np.ndarray] = {}
    for number, line in enumerate(lines[1:], start=3):
        fields = line.split()
        if len(fields) != len(names) + 1:
            raise DataError(f"{path}:{number}: expected a file name and {len(names)} values, got {len(fields)} fields")
        try:
            values = [int(value) for value in fields[1:]]
        except ValueError:
            bad = next(v for v in fields[1:] if not v.lstrip("+-").isdigit())
            raise DataError(f"{path}:{number}: {bad!r} is not an attribute value (use 1 / -1)") from None
        rows[fields[0]] = (np.array(values) > 0).astype(np.int8)
    return names, rows


def read_partition(path: Path) -> dict[str, int]:
    """``list_eval_partition.txt`` (0 train, 1 valid, 2 test) or ``name train|test`` lines."""
    words = {"0": TRAIN, "train": TRAIN, "1": TEST, "2": TEST, "val": TEST, "valid": TEST, "test": TEST}
    split: dict[str, int] = {}
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1].lower() not in words:
            raise DataError(f"{path}:{number}: expected 'file_name train|test' or 'file_name 0|1|2'")
        split[fields[0]] = words[fields[1].lower()]
    return split


def celeba_images(folder: Path) -> Path:
    """The folder or zip holding a CelebA folder's images."""
    image_root = folder / "img_align_celeba"
    if image_root.is_dir():
        return image_root
    zips = sorted(folder.glob("*.zip"))
    if not zips:
        raise DataError(f"{folder}: no img_align_celeba/ folder and no .zip of images")
    return zips[0]


def load_celeba(
    folder: Path,
    *,
    image_size: int,
    crop: str,
    channels: int | None,
    cache_dir: str | None,
    workers: int = 0,
    rescan: bool = False,
    limit: int | None = None,
) -> ImageDataset:
    """A CelebA folder: ``img_align_celeba/`` (or a zip of it) + ``list_attr_celeba*.txt``
    + optional ``list_eval_partition*.txt`` / ``split*.txt``."""
    attr_file = sorted(folder.glob("list_attr_celeba*.txt"))[0]
    label_names, rows = read_attributes(attr_file)  # a bad attribute file fails before any decoding
    dataset = load_image_files(
        ImageFiles.scan(celeba_images(folder), cache_root(cache_dir), rescan=rescan).first(limit),
        image_size=image_size,
        crop=crop,
        channels=channels,
        cache_dir=cache_dir,
        workers=workers,
        kind="celeba",
    )
    basenames = [PurePosixPath(name).name for name in dataset.names or []]
    missing = [name for name in basenames if name not in rows]
    if missing:
        raise DataError(f"{attr_file}: no attributes for {len(missing)} image(s), e.g. {missing[:3]}")
    dataset.labels = np.stack([rows[name] for name in basenames])
    dataset.label_names = label_names
    split_files = sorted(folder.glob("list_eval_partition*.txt")) + sorted(folder.glob("split*.txt"))
    if split_files:
        split = read_partition(split_files[0])
        dataset.partition = np.array([split.get(name, TRAIN) for name in basenames], dtype=np.uint8)
    return dataset


def _load(path, config) -> ImageDataset:
    return load_celeba(path, **decode_options(config), rescan=config.rescan, limit=config.limit)


DATA_SOURCES.add(
    "celeba",
    Source(_load, detect=is_celeba_folder),
    summary="CelebA's aligned faces, its official split and 40 attributes (celeba:PATH or the folder)",
    capabilities={"path"},
)
