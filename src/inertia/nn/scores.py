"""Sample-quality scores computed in a classifier's feature space (for generative models such as GANs).

- `frechet_distance`: the Fréchet (2-Wasserstein) distance between Gaussians fitted to two feature sets,
  ``|μ_a − μ_b|² + tr(Σ_a + Σ_b − 2(Σ_a^{1/2} Σ_b Σ_a^{1/2})^{1/2})`` (Dowson & Landau 1982; used on Inception
  features as the FID by Heusel, Ramsauer, Unterthiner, Nessler & Hochreiter, NeurIPS 2017). With the features of a
  classifier trained on the same data it is the "classifier FID" of small-data GAN studies.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._checks import InertiaError

__all__ = ["frechet_distance"]


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(features_a: ArrayLike, features_b: ArrayLike) -> float:
    """The Fréchet distance between Gaussians fitted to the rows of ``features_a`` and ``features_b`` (float64).

    ``d² = |μ_a − μ_b|² + tr Σ_a + tr Σ_b − 2 tr (Σ_a^{1/2} Σ_b Σ_a^{1/2})^{1/2}`` (Dowson & Landau, J. Multivariate
    Anal. 1982; Heusel et al., NeurIPS 2017, eq. 6), with unbiased sample covariances. The matrix square roots are
    taken by symmetric eigendecomposition (both arguments are symmetric positive semi-definite), so singular
    covariances are fine. Non-finite features give ``inf`` (a diverged generator).

    **Arguments:** two arrays of shape ``(n_a, d)`` and ``(n_b, d)``, ``n_a, n_b ≥ 2``.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise InertiaError(f"features_a and features_b must be (n, d) arrays with the same d and n >= 2; got shapes "
                           f"{a.shape} and {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf")
    cov_a, cov_b = np.cov(a, rowvar=False, ddof=1), np.cov(b, rowvar=False, ddof=1)
    root_a = _psd_sqrt(cov_a)
    cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0.0, None)))
    return float(np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)
