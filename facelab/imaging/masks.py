"""Masks from landmarks (pure functions on numpy arrays; shared by extraction, training and merge)."""

from __future__ import annotations

import cv2
import numpy as np

# Convex parts whose union is DFL's landmark-hull mask (jaw halves, brow-to-chin fans, nose).
_HULL_PARTS = (
    [*range(0, 9), 17],
    [*range(8, 17), 26],
    [17, 18, 19, 8],
    [24, 25, 26, 8],
    [*range(19, 25), 8],
    [*range(17, 22), 27, *range(31, 36), 8],
    [*range(22, 27), 27, *range(31, 36), 8],
    [*range(27, 31), *range(31, 36)],
)
INNER_FACE = slice(17, 68)  # brows, nose, eyes and mouth of the 68 points: everything but the jaw line


def _fill_hulls(shape: tuple[int, int], points: np.ndarray, parts: list | tuple) -> np.ndarray:
    """uint8 (H, W): 1 inside the union of the convex hulls of ``points[part]`` for each part."""
    mask = np.zeros(shape[:2], dtype=np.uint8)
    for part in parts:
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points[part]).astype(np.int32)), 1)
    return mask


def expanded_brows(landmarks: np.ndarray, amount: float = 1.0) -> np.ndarray:
    """Landmarks with the brows pushed up by ``amount`` x their height above the eye tops (covers the forehead
    the way DFL's ``eyebrows_expand_mod`` does)."""
    lmk = np.asarray(landmarks, dtype=np.float64).copy()
    r_top = np.array([lmk[36] + (lmk[0] - lmk[36]) * 0.25, lmk[36], lmk[37], lmk[38], lmk[39]])
    l_top = np.array([lmk[42], lmk[43], lmk[44], lmk[45], lmk[45] + (lmk[16] - lmk[45]) * 0.25])
    lmk[17:22] += 0.5 * amount * (lmk[17:22] - r_top)
    lmk[22:27] += 0.5 * amount * (lmk[22:27] - l_top)
    return lmk


def hull_mask(shape: tuple[int, int], landmarks: np.ndarray, brow_expand: float = 1.0) -> np.ndarray:
    """float32 (H, W) mask, 1 inside the face hull of 68 landmarks given in that image's pixels."""
    return _fill_hulls(shape, expanded_brows(landmarks, brow_expand), _HULL_PARTS).astype(np.float32)


def inner_face_mask(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """float32 (H, W) mask, 1 inside the convex hull of brows, eyes, nose and mouth (points 17-67): the face
    without its jaw line, where a merged swap's blend seam lies."""
    return _fill_hulls(shape, np.asarray(landmarks, np.float64), (INNER_FACE,)).astype(np.float32)


def eyes_mouth_mask(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """float32 (H, W) soft mask over both eyes and the inner mouth (DFL's eyes/mouth priority region): hulls of
    36-41, 42-47 and 60-67, dilated by h/32 and blurred by h/16 so the loss also covers lids and lips."""
    h = shape[0]
    mask = _fill_hulls(shape, np.asarray(landmarks, dtype=np.float64), (slice(36, 42), slice(42, 48), slice(60, 68)))
    k = max(1, h // 32)
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    b = max(1, h // 16) | 1
    return np.clip(cv2.GaussianBlur(mask.astype(np.float32), (b, b), 0), 0, 1)


def polygon_mask(shape: tuple[int, int], polygons: list[dict]) -> np.ndarray:
    """float32 (H, W) mask from labelled polygons ``[{"type": "include"|"exclude", "points": [[x, y], ...]}]``:
    the union of includes minus the union of excludes (DFL's XSeg label rule)."""
    mask = np.zeros(shape[:2], dtype=np.uint8)
    for kind, value in (("include", 1), ("exclude", 0)):
        for poly in polygons:
            if poly.get("type") == kind and len(poly.get("points", [])) >= 3:
                cv2.fillPoly(mask, [np.round(np.asarray(poly["points"], np.float64)).astype(np.int32)], value)
    return mask.astype(np.float32)
