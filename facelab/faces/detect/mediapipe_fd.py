"""MediaPipe BlazeFace, full-range model (ships inside the mediapipe wheel); fast and robust to pose."""

from __future__ import annotations

import os

import numpy as np

from facelab.faces.detect.base import Box, Detector, largest_first, suppress_overlaps
from facelab.faces.quiet import native_stderr_silenced

os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ logging would flood the progress bar


class MediapipeDetector(Detector):
    """Both BlazeFace models: the full-range one finds small and distant faces but misses some large, close-up or
    strongly turned ones (benchmarks/landmarks.py: 3 of 12 human-labelled faces), which the short-range one finds.
    Short-range boxes are added only where the full-range model found nothing and only above a stricter score
    (it fires at 0.5-0.7 on dog faces; the faces it rescues score 0.75-0.88)."""

    name = "mediapipe"

    def __init__(self, min_score: float = 0.5, short_range_score: float = 0.72) -> None:
        self.short_range_score = short_range_score
        from mediapipe.python.solutions import face_detection

        with native_stderr_silenced():
            self._models = [
                face_detection.FaceDetection(model_selection=sel, min_detection_confidence=min_score) for sel in (1, 0)
            ]
            for m in self._models:
                m.process(np.zeros((64, 64, 3), np.uint8))  # first run logs start-up noise

    def detect(self, image: np.ndarray) -> list[Box]:
        img = np.ascontiguousarray(image)
        full = suppress_overlaps(self._run(self._models[0], img))
        extra = [
            b
            for b in self._run(self._models[1], img)
            if b.score >= self.short_range_score and not any(_overlaps(b, f) for f in full)
        ]
        return largest_first(full + suppress_overlaps(extra))

    def _run(self, model, image: np.ndarray) -> list[Box]:
        h, w = image.shape[:2]
        res = model.process(image)
        boxes = []
        for d in res.detections or []:
            bb = d.location_data.relative_bounding_box
            x0, y0 = bb.xmin * w, bb.ymin * h
            x1, y1 = x0 + bb.width * w, y0 + bb.height * h
            # BlazeFace boxes stop at the mouth; extend to the chin like DFL does for S3FD so landmark
            # initialisation sees the whole face.
            y1 += 0.1 * (y1 - y0)
            boxes.append(Box(x0, y0, x1, y1, float(d.score[0]), self.name))
        return boxes

    def close(self) -> None:
        for m in self._models:
            m.close()


def _overlaps(a: Box, b: Box) -> bool:
    """Same face: either centre inside the other box (the two models frame faces differently)."""
    (ax, ay), (bx, by) = a.center, b.center
    return (b.x0 <= ax <= b.x1 and b.y0 <= ay <= b.y1) or (a.x0 <= bx <= a.x1 and a.y0 <= by <= a.y1)
