"""A small CNN classifier trained on a dataset's own labels, whose penultimate layer serves as a
domain feature space for FID/KID (ImageNet Inception features judge digits poorly).

Saved as safetensors with its shape in the metadata, so ``load_classifier`` needs nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from vaekit.data.dataset import ImageDataset
from vaekit.data.loader import BatchLoader
from vaekit.data.progress import JobProgress
from vaekit.io.checkpoints import require_fit
from vaekit.limits import images_per_chunk


class SmallClassifier(nn.Module):
    """conv32-conv64 (each + ReLU + 2x2 pool) -> 4x4 pool -> dense 128 (the features) -> classes."""

    def __init__(self, channels: int, num_classes: int, image_size: int, feature_dim: int = 128) -> None:
        super().__init__()
        self.channels, self.num_classes, self.image_size, self.feature_dim = (
            channels,
            num_classes,
            image_size,
            feature_dim,
        )
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(64 * 16, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate activations of [0, 1] images, resized to the training size if needed."""
        if images.shape[-1] != self.image_size:
            images = F.interpolate(
                images, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
            )
        return self.body(images.float())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))

    def metadata(self) -> dict[str, str]:
        keys = ("channels", "num_classes", "image_size", "feature_dim")
        return {"vaekit_classifier": json.dumps({key: getattr(self, key) for key in keys})}


MAX_CLASSES = 100_000  # distinct class labels (the output layer has one unit each)


def class_indices(labels: np.ndarray, classes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct class labels, each label's index among them): any whole numbers, remapped to
    0..K-1 with K bounded, so the output layer is sized by how many classes there are, not by the
    largest label. With ``classes`` given, labels not among them get index -1 (never predicted)."""
    values = np.asarray(labels)
    if not np.issubdtype(values.dtype, np.integer):
        whole = np.isfinite(values) & (values == np.round(values))
        if not whole.all():
            raise ValueError(f"class labels must be whole numbers; found {values[~whole][0]!r}")
    if classes is None:
        classes = np.unique(values)
        if len(classes) > MAX_CLASSES:
            raise ValueError(
                f"{len(classes):,} distinct class labels; a feature classifier takes at most {MAX_CLASSES:,}"
            )
        return classes, np.searchsorted(classes, values)
    position = np.clip(np.searchsorted(classes, values), 0, len(classes) - 1)
    return classes, np.where(classes[position] == values, position, -1)


def train_classifier(
    train: ImageDataset,
    test: ImageDataset | None,
    *,
    epochs: int = 3,
    batch_size: int | None = None,
    lr: float = 1e-3,
    seed: int = 0,
) -> tuple[SmallClassifier, float | None]:
    """Fit a classifier to ``train.labels``: class indices ``(N,)`` (softmax, e.g. MNIST digits) or
    binary attributes ``(N, K)`` (K sigmoid outputs, e.g. CelebA's 40); returns it and its test
    accuracy (per attribute, averaged, for attributes)."""
    if train.labels is None or train.labels.ndim not in (1, 2):
        raise ValueError("a feature classifier needs labels: a class per image (MNIST) or binary attributes (CelebA)")
    torch.manual_seed(seed)
    channels, size = train.image_shape[0], train.image_shape[1]
    batch_size = batch_size or images_per_chunk(train.image_shape, 128)  # 128 to 64 px; fewer above: bounded memory
    attributes = train.labels.ndim == 2
    labels = np.asarray(train.labels)
    if not attributes:
        classes, labels = class_indices(labels)
    outputs = labels.shape[1] if attributes else len(classes)
    model = SmallClassifier(channels, outputs, size)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    model.train()
    with JobProgress(f"training the classifier ({epochs} epochs)", epochs * len(train), says_done=False) as progress:
        for _ in range(epochs):
            order = rng.permutation(len(train))
            for start in range(0, len(order), batch_size):
                index = np.sort(order[start : start + batch_size])
                images = torch.from_numpy(np.ascontiguousarray(train.images[index])).float() / 255
                loss = _loss(model(images), labels[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                progress.advance(len(index))
    model.eval()
    if test is None or not len(test):
        return model, None
    return model, accuracy(model, test, None if attributes else class_indices(test.labels, classes)[1])


def _loss(logits: torch.Tensor, labels: np.ndarray) -> torch.Tensor:
    if labels.ndim == 2:
        return F.binary_cross_entropy_with_logits(logits, torch.from_numpy((labels > 0).astype(np.float32)))
    return F.cross_entropy(logits, torch.from_numpy(np.asarray(labels, dtype=np.int64)))


@torch.no_grad()
def accuracy(
    model: SmallClassifier, data: ImageDataset, labels: np.ndarray | None = None, batch_size: int | None = None
) -> float:
    """The share of ``data`` classified right (``labels``: its class indices, as training remapped them)."""
    all_labels = data.labels if labels is None else labels
    batch_size = batch_size or images_per_chunk(data.image_shape, 512)
    correct = 0
    for batch, start in zip(
        BatchLoader(data.images, batch_size, shuffle=False, drop_last=False),
        range(0, len(data), batch_size),
        strict=True,
    ):
        labels = np.asarray(all_labels[start : start + batch_size])
        logits = model(batch)
        if labels.ndim == 2:  # attributes: the share of (image, attribute) pairs right, per image
            correct += ((logits > 0) == torch.from_numpy(labels > 0)).float().mean(1).sum().item()
        else:
            correct += (logits.argmax(1) == torch.from_numpy(labels.astype(np.int64))).sum().item()
    return correct / len(data)


def save_classifier(model: SmallClassifier, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata=model.metadata())
    return path


def load_classifier(path: str | Path) -> SmallClassifier:
    """A classifier saved by ``save_classifier`` (eval mode, frozen)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"feature network {path} not found (train one with `vaekit train-classifier`)")
    with safe_open(str(path), "pt") as handle:
        meta = (handle.metadata() or {}).get("vaekit_classifier")
    if meta is None:
        raise ValueError(f"{path} is not a vaekit feature classifier (no vaekit_classifier metadata)")
    try:  # the network its metadata describes, built on the meta device (no memory) and held against
        options = json.loads(meta)  # the file's header, so a hostile feature_dim allocates nothing
        with torch.device("meta"):
            shaped = SmallClassifier(**options)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}: its vaekit_classifier metadata does not describe a classifier ({err})") from None
    require_fit(shaped, path)
    model = SmallClassifier(**options)
    model.load_state_dict(load_file(str(path)))
    return model.eval().requires_grad_(False)
