"""The data sources' registry: each source's file registers a ``Source`` (how to read it and, for a
bare path, how to recognise it); ``--data`` / ``data.source`` names one as ``kind`` or ``kind:PATH``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vaekit.registry import Registry

if TYPE_CHECKING:
    from vaekit.config import DataConfig
    from vaekit.data.dataset import ImageDataset


@dataclass(frozen=True)
class Source:
    """``load(path, config)`` reads the source (``path`` None where the source needs none);
    ``detect(path)`` recognises a bare path as this kind (tried in registration order)."""

    load: Callable[[Path | None, DataConfig], ImageDataset]
    detect: Callable[[Path], bool] | None = None


def decode_options(config: DataConfig) -> dict:
    """What every decoded source takes from ``data``: size, recipe, channels, cache and workers."""
    return {
        "image_size": config.image_size,
        "crop": config.crop,
        "channels": config.channels,
        "cache_dir": config.cache_dir,
        "workers": config.workers,
    }


# path: the source is read from a path (kind:PATH, or a bare path); no-path: it may be named alone
DATA_SOURCES: Registry = Registry("data source", "data.source", capabilities=("path", "no-path"))
