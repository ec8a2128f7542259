"""A 2-D map of a dataset's latent means (t-SNE, PCA or UMAP), each point drawn as its thumbnail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.offsetbox import AnnotationBbox, OffsetImage

from vaekit.data.dataset import ImageDataset
from vaekit.models.base import VAE
from vaekit.models.samplers import posterior_means
from vaekit.optional import require

METHODS = ("tsne", "pca", "umap")


def project(points: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """``(N, D)`` -> ``(N, 2)``."""
    if method == "pca":
        decomposition = require("sklearn.decomposition", "eval", "a PCA latent map")
        return decomposition.PCA(n_components=2, random_state=seed).fit_transform(points)
    if method == "tsne":
        manifold = require("sklearn.manifold", "eval", "a t-SNE latent map")
        perplexity = max(2.0, min(30.0, (len(points) - 1) / 3))
        return manifold.TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(points)
    if method == "umap":
        umap = require("umap", "umap", "a UMAP latent map")
        return umap.UMAP(n_components=2, random_state=seed).fit_transform(points)
    raise ValueError(f"unknown projection {method!r}: use tsne, pca or umap")


def latent_map(
    model: VAE,
    data: ImageDataset,
    output: Path | str,
    *,
    method: str = "tsne",
    max_points: int = 500,
    thumbnail_px: int = 24,
    seed: int = 0,
) -> Path:
    """Draw the map; points are coloured by class when ``data`` has one label per image."""
    count = min(max_points, len(data))
    subset = data.subset(np.sort(np.random.default_rng(seed).choice(len(data), count, replace=False)))
    coords = project(posterior_means(model, subset.images).flatten(1).numpy(), method, seed)
    fig = Figure(figsize=(10, 10))  # no pyplot: the user's backend and state stay untouched
    ax = fig.subplots()
    labels = subset.labels if subset.labels is not None and subset.labels.ndim == 1 else None
    colours = colormaps["tab10"](np.asarray(labels) % 10) if labels is not None else None
    ax.scatter(coords[:, 0], coords[:, 1], s=4, c=colours if colours is not None else "gray")
    zoom = thumbnail_px / subset.images.shape[-1]
    for i, (x, y) in enumerate(coords):
        picture = np.asarray(subset.images[i]).transpose(1, 2, 0)
        picture = picture[..., 0] if picture.shape[-1] == 1 else picture
        box = OffsetImage(picture, zoom=zoom, cmap="gray" if picture.ndim == 2 else None)
        edge = colours[i] if colours is not None else "none"
        ax.add_artist(
            AnnotationBbox(box, (x, y), frameon=colours is not None, bboxprops={"edgecolor": edge, "lw": 1.5}, pad=0.05)
        )
    ax.set_title(f"{method.upper()} of {count} posterior means ({data.source})")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=100)
    return output
