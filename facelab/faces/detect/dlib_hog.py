"""dlib's HOG + linear SVM frontal face detector (ships inside dlib)."""

from __future__ import annotations

import numpy as np

from facelab.faces.detect.base import Box, Detector, largest_first
from facelab.faces.weights import dlib_module


class DlibHogDetector(Detector):
    name = "dlib-hog"

    def __init__(self, upsample: int = 1, threshold: float = 0.5, max_side: int = 1280) -> None:
        self._dlib = dlib_module()
        self._det = self._dlib.get_frontal_face_detector()
        self.upsample = upsample
        # 0.5 rejects the false positive on the astronaut's suit that the default 0 threshold accepts.
        self.threshold = threshold
        self.max_side = max_side

    def detect(self, image: np.ndarray) -> list[Box]:
        img, s = _downscale(image, self.max_side)
        rects, scores, _ = self._det.run(img, self.upsample, self.threshold)
        return largest_first(
            [
                Box(r.left() / s, r.top() / s, r.right() / s, r.bottom() / s, float(sc), self.name)
                for r, sc in zip(rects, scores)
            ]
        )


def _downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Shrink so the longer side is at most ``max_side``; dlib's cost grows with pixels, not faces."""
    import cv2

    h, w = image.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s >= 1.0:
        return np.ascontiguousarray(image), 1.0
    return cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA), s
