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


def test_kid_reports_a_spread_only_when_its_subsets_differ():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    _, spread = kernel_inception_distance(a, b, n_subsets=10, subset_size=50)
    assert spread is None  # every subset would be both whole sets: the same number ten times
    _, spread = kernel_inception_distance(a, b, n_subsets=10, subset_size=20)
    assert spread is not None and spread > 0


def test_precision_recall_density_coverage_of_a_set_against_itself_and_a_collapsed_one():
    from vaekit.evaluation.generation import precision_recall_density_coverage

    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 2))
    same = precision_recall_density_coverage(real, rng.normal(size=(400, 2)))
    assert same["precision"] > 0.85 and same["recall"] > 0.85 and 0.7 < same["density"] < 1.3
    assert same["coverage"] > 0.85
    collapsed = precision_recall_density_coverage(real, rng.normal(size=(400, 2)) * 0.05)  # all near the mode
    assert collapsed["precision"] > 0.95 and collapsed["recall"] < 0.2 and collapsed["coverage"] < 0.2
    off = precision_recall_density_coverage(real, rng.normal(size=(400, 2)) + 10)  # nowhere near the data
    assert off["precision"] == 0 and off["density"] == 0 and off["coverage"] == 0 and off["recall"] == 0


def test_precision_counts_a_sample_inside_a_real_balls_radius_exactly():
    from vaekit.evaluation.generation import precision_recall_density_coverage

    real = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [6.0]])  # k = 5: every radius is >= 3
    fake = np.array([[9.0], [9.01], [20.0], [21.0], [22.0], [23.0], [24.0]])
    result = precision_recall_density_coverage(real, fake)
    assert result["precision"] == pytest.approx(2 / 7)  # 9 is 3 from 6, whose radius is 5 (to 1): inside
