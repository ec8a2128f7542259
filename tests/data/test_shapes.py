import numpy as np

from vaekit.data.shapes import FACTORS, load_shapes


def test_deterministic_by_seed_with_factor_labels():
    a = load_shapes(n=20, image_size=16, channels=None, seed=3, cache_dir=None)
    b = load_shapes(n=20, image_size=16, channels=None, seed=3, cache_dir=None)
    c = load_shapes(n=20, image_size=16, channels=None, seed=4, cache_dir=None)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    assert a.images.shape == (20, 3, 16, 16) and a.labels.shape == (20, len(FACTORS))
    assert set(np.unique(a.labels[:, 0])) <= {0, 1, 2, 3}


def test_the_shape_is_where_its_factors_say():
    data = load_shapes(n=50, image_size=32, channels=1, seed=0, cache_dir=None)
    x, y = data.labels[:, 4], data.labels[:, 5]
    bright = data.images[:, 0] > 60
    ys, xs = np.mgrid[0:32, 0:32]
    cx = (bright * xs).sum((1, 2)) / bright.sum((1, 2)) / 32
    cy = (bright * ys).sum((1, 2)) / bright.sum((1, 2)) / 32
    assert np.abs(cx - x).max() < 0.12 and np.abs(cy - y).max() < 0.12
