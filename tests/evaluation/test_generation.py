import numpy as np
import pytest

from vaekit.evaluation.generation import frechet_distance, kernel_inception_distance


def _features(n=2000, dim=8, seed=0, shift=0.0):
    return np.random.default_rng(seed).normal(shift, 1.0, (n, dim))


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_noise():
    real = _features()
    assert abs(frechet_distance(real, real)) < 1e-6
    rng = np.random.default_rng(1)
    distances = [frechet_distance(real, real + rng.normal(0, s, real.shape)) for s in (0.1, 0.5, 1.0)]
    assert 0 < distances[0] < distances[1] < distances[2]


def test_fid_of_shifted_gaussians_is_the_squared_mean_difference():
    a = _features(20000, 4, seed=0)
    b = _features(20000, 4, seed=1, shift=1.0)
    assert frechet_distance(a, b) == pytest.approx(4.0, abs=0.15)


def test_kid_is_unbiased_for_identical_distributions():
    estimates = [
        kernel_inception_distance(_features(200, 8, seed=s), _features(200, 8, seed=100 + s), 5, 100, seed=s)[0]
        for s in range(30)
    ]
    assert abs(np.mean(estimates)) < 3 * np.std(estimates) / np.sqrt(len(estimates)) + 1e-4
    assert min(estimates) < 0 < max(estimates)  # an unbiased estimate straddles zero


def test_kid_grows_with_the_distance_between_distributions():
    real = _features(500)
    near = kernel_inception_distance(real, _features(500, seed=1, shift=0.2), 10, 200)[0]
    far = kernel_inception_distance(real, _features(500, seed=1, shift=1.0), 10, 200)[0]
    assert 0 < near < far
