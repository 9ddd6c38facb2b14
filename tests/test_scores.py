"""The Fréchet distance against its closed form for Gaussians."""

import numpy as np
import pytest
from scipy import linalg

from inertia._checks import InertiaError
from inertia.nn.scores import frechet_distance


def test_frechet_distance_equals_closed_form_of_the_sample_moments():
    """Against scipy's general matrix square root of Σ_aΣ_b (the textbook form of Heusel et al. eq. 6), to 1e-8."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 5)) @ rng.normal(size=(5, 5))
    b = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5)) + 0.7
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca + cb - 2 * linalg.sqrtm(ca @ cb).real)
    assert abs(frechet_distance(a, b) - expected) < 1e-8 * expected


def test_frechet_distance_of_two_samples_of_one_gaussian_is_a_sampling_error_and_a_shift_adds_its_square():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(20000, 3)), rng.normal(size=(20000, 3))
    base = frechet_distance(a, b)
    assert 0 <= base < 3e-3  # E ≈ 2·d·d/n-scale sampling error for identity covariances
    shift = np.array([1.0, -2.0, 0.5])
    # a shift leaves the covariances alone: the distance changes by exactly |μ_a − μ_b − s|² − |μ_a − μ_b|²
    gap = a.mean(0) - b.mean(0)
    assert abs(frechet_distance(a, b + shift) - base - ((gap - shift) @ (gap - shift) - gap @ gap)) < 1e-9


def test_frechet_distance_rejects_mismatched_shapes_and_flags_divergence():
    with pytest.raises(InertiaError, match="features_a"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    assert frechet_distance(np.full((3, 2), np.nan), np.zeros((3, 2))) == float("inf")
