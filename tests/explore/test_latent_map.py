import sys

import numpy as np
import pytest
from PIL import Image

from tests.helpers import tiny_config
from vaekit.data.shapes import load_shapes
from vaekit.explore.latent_map import latent_map, project
from vaekit.models import create_model


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_projection_to_two_dimensions(method):
    points = np.random.default_rng(0).normal(size=(40, 6))
    assert project(points, method).shape == (40, 2)


def test_umap_without_the_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # what Python does for a package that is not installed
    with pytest.raises(ValueError, match=r"needs the umap package: pip install 'vaekit\[umap\]'"):
        project(np.zeros((5, 2)), "umap")


def test_map_with_thumbnails_coloured_by_class(tmp_path):
    model = create_model(tiny_config()).eval()
    data = load_shapes(n=30, image_size=16, channels=3, seed=0, cache_dir=None)
    data.labels = data.labels[:, 0].astype(np.int64)  # the shape class
    path = latent_map(model, data, tmp_path / "map.png", method="pca", max_points=20)
    with Image.open(path) as picture:
        assert picture.size == (1000, 1000)


def test_the_points_of_the_map_are_distinct_images_drawn_without_replacement(tmp_path, monkeypatch):
    import vaekit.explore.latent_map as module

    seen = []
    monkeypatch.setattr(module, "project", lambda points, method, seed: seen.append(points) or points[:, :2])
    data = load_shapes(n=50, image_size=16, channels=3, seed=0, cache_dir=str(tmp_path / "cache"))
    latent_map(create_model(tiny_config()), data, tmp_path / "map.png", max_points=50)
    assert len(np.unique(seen[0], axis=0)) == 50
