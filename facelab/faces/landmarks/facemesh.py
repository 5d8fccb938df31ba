"""MediaPipe FaceMesh (478 points with iris), run on a square crop around the box and mapped to iBUG 68."""

from __future__ import annotations

import os

import cv2
import numpy as np

from facelab.faces.detect.base import Box
from facelab.faces.landmarks.base import Landmarker, Landmarks
from facelab.faces.quiet import native_stderr_silenced
from facelab.geometry.landmarks68 import MESH_TO_68

os.environ.setdefault("GLOG_minloglevel", "2")

CROP_SIZE = 256
CROP_MARGIN = 1.8  # crop side relative to the larger box side: FaceMesh's own detector needs context


class FaceMeshLandmarker(Landmarker):
    name = "facemesh"

    def __init__(self) -> None:
        from mediapipe.python.solutions import face_mesh

        # Static mode: each crop is detected afresh (video smoothing is done by facelab, not by mediapipe's tracker,
        # so results do not depend on frame order or on --every).
        with native_stderr_silenced():
            self._fm = face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.3
            )
            self._fm.process(np.zeros((64, 64, 3), np.uint8))  # first run logs start-up noise

    def landmarks(self, image: np.ndarray, box: Box) -> Landmarks | None:
        cx, cy = box.center
        side = CROP_MARGIN * max(box.width, box.height)
        s = CROP_SIZE / side
        m = np.array([[s, 0, CROP_SIZE / 2 - s * cx], [0, s, CROP_SIZE / 2 - s * cy]])
        crop = cv2.warpAffine(
            image,
            m,
            (CROP_SIZE, CROP_SIZE),
            flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
        )
        res = self._fm.process(crop)
        if not res.multi_face_landmarks:
            return None
        lm = res.multi_face_landmarks[0].landmark
        mesh = np.array([[p.x * CROP_SIZE, p.y * CROP_SIZE, p.z * CROP_SIZE] for p in lm], dtype=np.float64)
        mesh[:, :2] = (mesh[:, :2] - m[:, 2]) / s  # back to image px
        mesh[:, 2] /= s
        return Landmarks(points=mesh[MESH_TO_68, :2].copy(), mesh=mesh)

    def close(self) -> None:
        self._fm.close()
