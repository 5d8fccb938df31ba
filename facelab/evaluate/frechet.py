"""Fréchet distance (FID's formula) with pytorch-fid's numerical procedure, feature statistics, and KID.

FD = ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2)), with (S1 S2)^(1/2) from ``scipy.linalg.sqrtm``;
a non-finite root is retried with eps * I added to both covariances; a complex root is accepted (real part kept)
only if the imaginary parts of its diagonal are within 1e-3 of zero. numpy only (no torch import).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
from scipy import linalg

log = logging.getLogger(__name__)

MIN_FID_SAMPLES = 2048  # below the feature dimension the covariance is rank-deficient
KID_FULL_GRAM_MAX = 3000  # KID precomputes whole Gram matrices up to this many samples per set (72 MB each)


class FIDValue(NamedTuple):
    fid: float
    small_sample: bool  # True: fewer than MIN_FID_SAMPLES in a set, the value is biased (see the warning)


class KIDValue(NamedTuple):
    mean: float
    std: float  # over subsets (population std, ddof=0); the subset size used is min(subset_size, N_a, N_b)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), computed as pytorch-fid does."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape:
        raise ValueError(f"mean vectors differ in length: {mu1.shape} vs {mu2.shape}")
    if sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"covariances {sigma1.shape}, {sigma2.shape} do not fit means of length {mu1.size}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)  # no ``disp``: deprecated in scipy 1.16, removed in 1.18
    if not np.isfinite(covmean).all():
        # the product is (nearly) singular: regularise both covariances, as pytorch-fid/TTUR do
        log.warning("Frechet distance: singular covariance product; adding %g to the diagonals", eps)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        # rounding can leave small imaginary parts; large ones on the diagonal mean a broken input
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(
                f"Frechet distance: matrix square root has imaginary component {np.abs(covmean.imag).max():g}"
            )
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, d) features -> mean (d,) and unbiased covariance (d, d) (``np.cov``, divides by N - 1), float64."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need (N >= 2, d) features, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def small_sample_warning(n_a: int, n_b: int, min_samples: int = MIN_FID_SAMPLES) -> str | None:
    """The caveat to print next to an FID computed on fewer than ``min_samples`` images per set."""
    if min(n_a, n_b) >= min_samples:
        return None
    return (
        f"FID on {n_a} vs {n_b} images (< {min_samples}, the feature dimension): the covariance is rank-deficient "
        "and FID is biased upwards and noisy; compare only runs with the same N and reference set, prefer KID"
    )


def fid_from_features(a: np.ndarray, b: np.ndarray, eps: float = 1e-6, min_samples: int = MIN_FID_SAMPLES) -> FIDValue:
    """FID between two (N, d) feature sets; logs a warning and sets ``small_sample`` when N < ``min_samples``."""
    warning = small_sample_warning(len(a), len(b), min_samples)
    if warning:
        log.warning(warning)
    mu1, s1 = stats(a)
    mu2, s2 = stats(b)
    return FIDValue(frechet_distance(mu1, s1, mu2, s2, eps), warning is not None)


def _poly_kernel(x: np.ndarray, y: np.ndarray, degree: int, gamma: float, coef0: float) -> np.ndarray:
    return (x @ y.T * gamma + coef0) ** degree


def _mmd2_unbiased(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray) -> float:
    # within-set sums leave out the diagonal (k(x, x)) and divide by m(m-1); the cross term uses all m^2 pairs
    m = kxx.shape[0]
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2 * kxy.sum() / (m * m))


def kid(
    a: np.ndarray,
    b: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    rng: np.random.Generator | int | None = 0,
) -> KIDValue:
    """Kernel Inception Distance: unbiased MMD^2 with k(x, y) = (gamma x.y + coef0)^degree (gamma = 1/d by
    default), averaged over ``subsets`` random subsets of ``min(subset_size, N_a, N_b)`` drawn without replacement
    from each set. ``rng`` seeds the draw (an int or Generator; None: unseeded), so results are reproducible."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"need two (N, d) feature sets with the same d, got {x.shape} and {y.shape}")
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(x)} and {len(y)}")
    g = 1.0 / x.shape[1] if gamma is None else gamma
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    # small sets: one Gram matrix each, then index it (cheaper than 100 subset products, same numbers)
    full = max(len(x), len(y)) <= KID_FULL_GRAM_MAX
    if full:
        kxx_all = _poly_kernel(x, x, degree, g, coef0)
        kyy_all = _poly_kernel(y, y, degree, g, coef0)
        kxy_all = _poly_kernel(x, y, degree, g, coef0)
    values = np.empty(subsets)
    for s in range(subsets):
        ix = gen.choice(len(x), m, replace=False)
        iy = gen.choice(len(y), m, replace=False)
        if full:
            kxx, kyy, kxy = kxx_all[np.ix_(ix, ix)], kyy_all[np.ix_(iy, iy)], kxy_all[np.ix_(ix, iy)]
        else:
            xs, ys = x[ix], y[iy]
            kxx = _poly_kernel(xs, xs, degree, g, coef0)
            kyy = _poly_kernel(ys, ys, degree, g, coef0)
            kxy = _poly_kernel(xs, ys, degree, g, coef0)
        values[s] = _mmd2_unbiased(kxx, kyy, kxy)
    return KIDValue(float(values.mean()), float(values.std()))
