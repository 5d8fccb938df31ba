"""Least-squares similarity transform between point sets (Umeyama, 1991)."""

from __future__ import annotations

import numpy as np


def umeyama(src: np.ndarray, dst: np.ndarray, estimate_scale: bool = True) -> np.ndarray:
    """The 3x3 homogeneous similarity ``T`` minimising ``sum |dst_i - T(src_i)|^2``.

    ``src`` and ``dst`` are (N, D) arrays of corresponding points. Reflections are excluded (the determinant
    sign is corrected), so the result is a rotation, uniform scale and translation.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    n, dim = src.shape
    mu_s, mu_d = src.mean(0), dst.mean(0)
    sc, dc = src - mu_s, dst - mu_d
    cov = dc.T @ sc / n
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(dim)
    if np.linalg.det(cov) < 0 or (np.linalg.matrix_rank(cov) == dim - 1 and np.linalg.det(u) * np.linalg.det(vt) < 0):
        d[-1] = -1
    r = u @ np.diag(d) @ vt
    var_s = (sc**2).sum() / n
    scale = (s * d).sum() / var_s if estimate_scale else 1.0
    t = np.eye(dim + 1)
    t[:dim, :dim] = scale * r
    t[:dim, dim] = mu_d - scale * r @ mu_s
    return t


def apply_affine(mat: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 2x3 (or 3x3) affine matrix to (N, 2) points."""
    pts = np.asarray(pts, dtype=np.float64)
    return pts @ mat[:2, :2].T + mat[:2, 2]


def invert_affine(mat: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix, as 2x3."""
    full = np.vstack([mat[:2], [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]
