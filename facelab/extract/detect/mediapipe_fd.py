"""MediaPipe BlazeFace, full-range model (ships inside the mediapipe wheel); fast and robust to pose."""

from __future__ import annotations

import os

import numpy as np

from facelab.extract.detect.base import Box, Detector, largest_first, suppress_overlaps
from facelab.extract.quiet import native_stderr_silenced

os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ logging would flood the progress bar


class MediapipeDetector(Detector):
    name = "mediapipe"

    def __init__(self, min_score: float = 0.5) -> None:
        from mediapipe.python.solutions import face_detection

        with native_stderr_silenced():
            self._fd = face_detection.FaceDetection(model_selection=1, min_detection_confidence=min_score)
            self._fd.process(np.zeros((64, 64, 3), np.uint8))  # first run logs start-up noise

    def detect(self, image: np.ndarray) -> list[Box]:
        h, w = image.shape[:2]
        res = self._fd.process(np.ascontiguousarray(image))
        boxes = []
        for d in res.detections or []:
            bb = d.location_data.relative_bounding_box
            x0, y0 = bb.xmin * w, bb.ymin * h
            x1, y1 = x0 + bb.width * w, y0 + bb.height * h
            # BlazeFace boxes stop at the mouth; extend to the chin like DFL does for S3FD so landmark
            # initialisation sees the whole face.
            y1 += 0.1 * (y1 - y0)
            boxes.append(Box(x0, y0, x1, y1, float(d.score[0]), self.name))
        return largest_first(suppress_overlaps(boxes))

    def close(self) -> None:
        self._fd.close()
