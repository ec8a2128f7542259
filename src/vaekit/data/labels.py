"""Label tables: CelebA's attribute file or a CSV of ``filename,attr1,attr2,...``, joined to images."""

from __future__ import annotations

import csv
import io
from pathlib import Path, PurePosixPath

import numpy as np

from vaekit.data.celeba import read_attributes
from vaekit.data.dataset import ImageDataset
from vaekit.data.images import DataError, read_text

_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"-1", "0", "false", "no", "n"}


def read_label_table(path: Path | str) -> tuple[list[str], dict[str, np.ndarray]]:
    """(attribute names, {file name: 0/1 int8 vector}) from a CelebA attribute file or a CSV whose
    first column holds file names and whose other columns hold binary values (±1, 0/1, true/false)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"label file {path} not found")
    if path.suffix.lower() != ".csv":
        return read_attributes(path)
    rows = list(csv.reader(io.StringIO(read_text(path), newline="")))
    if len(rows) < 2:
        raise DataError(f"{path}: needs a header row and at least one row of labels")
    names = [name.strip() for name in rows[0][1:]]
    table: dict[str, np.ndarray] = {}
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(names) + 1:
            raise DataError(f"{path}:{number}: expected {len(names) + 1} columns, got {len(row)}")
        values = []
        for name, cell in zip(names, row[1:], strict=True):
            word = cell.strip().lower()
            if word not in _TRUE | _FALSE:
                raise DataError(f"{path}:{number}: column {name!r} holds {cell!r}, not a binary value")
            values.append(word in _TRUE)
        file_name = PurePosixPath(row[0].strip()).name
        if file_name in table:
            raise DataError(f"{path}:{number}: a second row for {file_name!r}; each image takes one row")
        table[file_name] = np.array(values, dtype=np.int8)
    return names, table


def attach_labels(dataset: ImageDataset, path: Path | str) -> ImageDataset:
    """``dataset`` with labels from ``path`` matched by file name; every image must have a row."""
    names, table = read_label_table(path)
    basenames = [PurePosixPath(name).name for name in dataset.names or []]
    missing = [name for name in basenames if name not in table]
    if not basenames or missing:
        raise DataError(f"{path}: no labels for {len(missing) or len(dataset)} image(s), e.g. {missing[:3]}")
    dataset.labels = np.stack([table[name] for name in basenames])
    dataset.label_names = names
    return dataset
