"""A toy data source: checkerboards, generated (``--data toy-checkers``)."""

from __future__ import annotations

import numpy as np

from vaekit.data.dataset import ImageDataset
from vaekit.data.registry import DATA_SOURCES, Source


def checkers(path, config) -> ImageDataset:
    size = config.image_size
    board = (np.add.outer(np.arange(size), np.arange(size)) // 2 % 2 * 255).astype(np.uint8)
    images = np.stack([np.roll(board, i, axis=1) for i in range(config.num_images)])[:, None]
    return ImageDataset(np.repeat(images, config.channels or 1, axis=1), source="toy-checkers")


DATA_SOURCES.add("toy-checkers", Source(checkers), summary="checkerboards (a test's toy)", capabilities={"no-path"})
