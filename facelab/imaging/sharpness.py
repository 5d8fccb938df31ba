"""Sharpness scores for face crops."""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from facelab.imaging.masks import hull_mask, inner_face_mask


def laplacian_sharpness(
    image: np.ndarray, landmarks: np.ndarray, size: int = 256, region: Literal["hull", "inner"] = "hull"
) -> float:
    """Variance of the Laplacian inside a face region of an aligned face, measured at ``size`` px so scores are
    comparable across output sizes. Higher is sharper; motion-blurred or out-of-focus faces score low.

    ``region``: ``"hull"``, the landmark hull (DFL's blur measure, used for sorting facesets); ``"inner"``, the
    convex hull of brows, eyes, nose and mouth (points 17-67), which leaves out the jaw line and with it the seam
    where a swapped face is blended into its frame: that seam is a sharp edge even around a featureless blob, and
    inside the whole hull it outweighed the face's own detail (a blob and a trained swap measured alike)."""
    h = image.shape[0]
    s = size / h
    small = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA) if h != size else image
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY) if small.ndim == 3 else small
    lap = cv2.Laplacian(gray.astype(np.float32), cv2.CV_32F, ksize=3)
    pts = np.asarray(landmarks, np.float64) * s
    if region == "inner":
        m = inner_face_mask((size, size), pts) > 0
    elif region == "hull":
        m = hull_mask((size, size), pts, brow_expand=0.0) > 0
    else:
        raise ValueError(f"unknown region {region!r} (hull or inner)")
    vals = lap[m] if m.any() else lap.ravel()
    return float(vals.var())
