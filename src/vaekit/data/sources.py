"""``--data`` specs: a registered source named alone (``shapes``, ``mnist``), ``kind:PATH``, or a
path whose kind is recognised (``vaekit components data`` lists the kinds)."""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np

from vaekit.config import DataConfig
from vaekit.data import shards
from vaekit.data.dataset import ImageDataset
from vaekit.data.images import DataError
from vaekit.data.labels import attach_labels
from vaekit.data.registry import DATA_SOURCES

FALLBACK = "images"  # a path no source recognises is a folder or zip of images


def parse_spec(spec: str) -> tuple[str, Path | None]:
    """Split a spec into (kind, path), recognising the kind from the path when not given."""
    if spec in DATA_SOURCES:
        if not DATA_SOURCES.get(spec).has("no-path"):
            raise DataError(f"--data {spec} needs a location: give {spec}:PATH (or the path itself)")
        return spec, None
    if shards.is_shard_spec(spec.removeprefix("shards:")):  # a URL or a brace pattern: not one path
        return "shards", Path(spec.removeprefix("shards:"))
    kind, sep, rest = spec.partition(":")
    if sep and kind in DATA_SOURCES:
        if not rest and not DATA_SOURCES.get(kind).has("no-path"):
            raise DataError(f"data kind {kind!r} needs a path: {kind}:PATH")
        return kind, Path(rest).expanduser() if rest else None
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(
            f"data source {spec!r} does not exist{_nearest(path)} (kinds: {', '.join(DATA_SOURCES.names())}; or a path)"
        )
    for entry in DATA_SOURCES:
        if entry.factory.detect is not None and entry.factory.detect(path):
            return entry.name, path
    return FALLBACK, path


def absolute_spec(spec: str) -> str:
    """``spec`` with its path made absolute (``png/train`` -> ``/home/me/png/train``, ``celeba:x``
    -> ``celeba:/home/me/x``), so that a run's config reads the same data from any directory."""
    if "://" in spec:
        return spec
    kind, path = parse_spec(spec)
    if path is None:
        return spec
    explicit = spec.partition(":")[0] == kind and ":" in spec
    return f"{kind}:{path.resolve()}" if explicit else str(path.resolve())


def load_dataset(config: DataConfig) -> ImageDataset:
    """All images of the source that ``config.source`` names (the first ``config.limit``: folders
    and zips decode no more), decoded to the configured size, with labels from ``config.labels``."""
    kind, path = parse_spec(config.source)
    dataset = DATA_SOURCES.get(kind).factory.load(path, config)
    if config.limit is not None and len(dataset) > config.limit:
        dataset = dataset.subset(np.arange(config.limit))
    return attach_labels(dataset, config.labels) if config.labels else dataset


def _nearest(path: Path) -> str:
    """`` (did you mean 'NAME'?)`` for a missing path whose folder holds a name close to it."""
    parent = path.parent if str(path.parent) else Path(".")
    try:
        names = [p.name for p in parent.iterdir()][:10_000] if parent.is_dir() else []
    except OSError:
        return ""
    hint = difflib.get_close_matches(path.name, names, n=1, cutoff=0.75)
    return f" (did you mean {str(parent / hint[0])!r}?)" if hint else ""
