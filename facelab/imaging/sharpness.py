"""Sharpness scores for face crops."""

from __future__ import annotations

import cv2
import numpy as np

from facelab.imaging.masks import hull_mask


def laplacian_sharpness(image: np.ndarray, landmarks: np.ndarray, size: int = 256) -> float:
    """Variance of the Laplacian inside the landmark hull of an aligned face, measured at ``size`` px so scores
    are comparable across output sizes. Higher is sharper; motion-blurred or out-of-focus faces score low."""
    h = image.shape[0]
    s = size / h
    small = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA) if h != size else image
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY) if small.ndim == 3 else small
    lap = cv2.Laplacian(gray.astype(np.float32), cv2.CV_32F, ksize=3)
    m = hull_mask((size, size), np.asarray(landmarks) * s, brow_expand=0.0) > 0
    vals = lap[m] if m.any() else lap.ravel()
    return float(vals.var())
