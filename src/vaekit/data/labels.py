"""Labels joined to images: CelebA's attribute file, a CSV of ``filename,attr1,attr2,...``, a
``.npy`` array in the images' order, or the class folders of an ``ImageFolder``-style tree."""

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
    """``dataset`` with labels from ``path``: a table matched by file name (every image must have a
    row) or a ``.npy`` array of one label row per image, in the data's order."""
    if Path(path).suffix.lower() == ".npy":
        return _attach_array(dataset, Path(path))
    names, table = read_label_table(path)
    basenames = [PurePosixPath(name).name for name in dataset.names or []]
    missing = [name for name in basenames if name not in table]
    if not basenames or missing:
        raise DataError(f"{path}: no labels for {len(missing) or len(dataset)} image(s), e.g. {missing[:3]}")
    dataset.labels = np.stack([table[name] for name in basenames])
    dataset.label_names = names
    return dataset


def _attach_array(dataset: ImageDataset, path: Path) -> ImageDataset:
    from vaekit.data.arrays import read_arrays

    labels, _ = read_arrays(path)
    if labels.ndim not in (1, 2) or len(labels) != len(dataset) or labels.dtype.kind not in "biu":
        raise DataError(
            f"{path}: labels are whole numbers of shape (N,) or (N, K) for the {len(dataset)} images, "
            f"got {labels.dtype} {labels.shape}"
        )
    dataset.labels = np.asarray(labels)
    return dataset


def folder_classes(names: list[str]) -> tuple[np.ndarray, list[str]] | None:
    """Each image's class from the folder it lies in (``CLASS/...``, numbered in sorted order) and the
    class names, or None unless every image lies in a class folder and there are at least two."""
    folders = [PurePosixPath(name).parts[0] if len(PurePosixPath(name).parts) > 1 else None for name in names]
    classes = sorted({folder for folder in folders if folder is not None})
    if not folders or None in folders or len(classes) < 2:
        return None
    number = {name: i for i, name in enumerate(classes)}
    return np.array([number[folder] for folder in folders], dtype=np.int64), classes


def classes_from_folders(dataset: ImageDataset) -> ImageDataset:
    """``dataset`` with a class per image from the folder it lies in (``ROOT/CLASS/...``, classes
    numbered in sorted order, named by ``label_names``): the layout of ImageNet and most class data."""
    found = folder_classes(dataset.names or [])
    if found is None:
        raise DataError(
            f"{dataset.source}: no labels; give --labels (a CSV, CelebA attributes or a .npy array), or lay the "
            "images out in class folders (ROOT/CLASS/image.png, at least two classes)"
        )
    dataset.labels, dataset.label_names = found
    return dataset
