"""``--data`` specs: ``shapes``, ``mnist``, a path (kind detected) or ``kind:path``."""

from __future__ import annotations

from pathlib import Path

from vaekit.config import DataConfig
from vaekit.data.cache import default_cache_dir
from vaekit.data.celeba import is_celeba_folder, load_celeba
from vaekit.data.dataset import ImageDataset
from vaekit.data.idx import is_idx_folder, load_idx_folder
from vaekit.data.images import DataError, ImageFiles, load_image_files
from vaekit.data.labels import attach_labels
from vaekit.data.shapes import load_shapes

KINDS = ("shapes", "images", "idx", "mnist", "celeba")


def parse_spec(spec: str) -> tuple[str, Path | None]:
    """Split a spec into (kind, path), detecting the kind from the path when not given."""
    if spec in ("shapes", "mnist"):
        return spec, None
    kind, sep, rest = spec.partition(":")
    if sep and kind in KINDS:
        return kind, Path(rest).expanduser() if rest else None
    path = Path(spec).expanduser()
    if spec == "celeba":
        raise DataError("--data celeba needs a location: give celeba:PATH (or the path itself)")
    if not path.exists():
        raise DataError(f"data source {spec!r} does not exist (kinds: {', '.join(KINDS)}; or a path)")
    if is_celeba_folder(path):
        return "celeba", path
    if is_idx_folder(path):
        return "idx", path
    return "images", path


def load_dataset(config: DataConfig) -> ImageDataset:
    """All images of the source that ``config.source`` names, decoded to the configured size,
    with labels from ``config.labels`` when given."""
    dataset = _load_source(config)
    return attach_labels(dataset, config.labels) if config.labels else dataset


def _load_source(config: DataConfig) -> ImageDataset:
    kind, path = parse_spec(config.source)
    common = {"image_size": config.image_size, "channels": config.channels, "cache_dir": config.cache_dir}
    if kind == "shapes":
        return load_shapes(n=config.num_images, seed=config.seed, **common)
    if kind == "mnist" and path is None:
        path = Path(config.cache_dir or default_cache_dir()) / "mnist"
    if path is None:
        raise DataError(f"data kind {kind!r} needs a path: {kind}:PATH")
    crop = config.crop
    if kind in ("idx", "mnist"):
        return load_idx_folder(path, crop=crop, download=kind == "mnist", **common)
    if kind == "celeba":
        return load_celeba(path, crop=crop, workers=config.workers, **common)
    return load_image_files(ImageFiles.scan(path), crop=crop, workers=config.workers, **common)
