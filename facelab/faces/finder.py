"""Detection + landmarks + refinement for one image: the part of extraction every stage reuses."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facelab.faces.detect import Box, make_detector
from facelab.faces.landmarks import make_landmarker
from facelab.geometry.facetype import FaceType, transform_matrix
from facelab.geometry.landmarks68 import REFINE_BOX_256
from facelab.geometry.umeyama import apply_affine, invert_affine

REFINE_SIZE = 256


@dataclass
class FoundFace:
    box: Box
    points: np.ndarray  # (68, 2) image px
    mesh: np.ndarray | None = None  # (N, 3) image px, if the landmark model is dense


class FaceFinder:
    """Finds faces and their 68 landmarks in RGB images.

    With ``refine`` the landmark model runs a second time on a FULL-face crop aligned with the first result
    and the points are mapped back: the model then always sees the face upright, centred and at one scale,
    which makes it more accurate on tilted faces and steadier across video frames.
    """

    def __init__(
        self, detector: str = "mediapipe", landmarker: str = "dlib68", refine: bool = True, min_face: int = 24
    ) -> None:
        self.detector = make_detector(detector)
        self.landmarker = make_landmarker(landmarker)
        self.refine = refine
        self.min_face = min_face

    @property
    def names(self) -> tuple[str, str]:
        return self.detector.name, self.landmarker.name

    def find(self, image: np.ndarray, max_faces: int = 0) -> list[FoundFace]:
        boxes = [b for b in self.detector.detect(image) if min(b.width, b.height) >= self.min_face]
        if max_faces:
            boxes = boxes[:max_faces]
        faces = []
        for box in boxes:
            lm = self.landmarker.landmarks(image, box)
            if lm is None:
                continue
            face = FoundFace(box, lm.points, lm.mesh)
            if self.refine:
                face = self._refine(image, face)
            if plausible(face):
                faces.append(face)
        return faces

    def _refine(self, image: np.ndarray, face: FoundFace) -> FoundFace:
        m = transform_matrix(face.points, REFINE_SIZE, FaceType.FULL)
        crop = cv2.warpAffine(
            image, m, (REFINE_SIZE, REFINE_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        lm = self.landmarker.landmarks(crop, Box(*REFINE_BOX_256, score=1.0, source="dlib-hog"))
        if lm is None:
            return face
        inv = invert_affine(m)
        mesh = None
        if lm.mesh is not None:
            mesh = lm.mesh.copy()
            mesh[:, :2] = apply_affine(inv, mesh[:, :2])
            mesh[:, 2] *= np.sqrt(abs(np.linalg.det(inv[:, :2])))
        return FoundFace(face.box, apply_affine(inv, lm.points), mesh if mesh is not None else face.mesh)

    def close(self) -> None:
        self.detector.close()
        self.landmarker.close()


def plausible(face: FoundFace) -> bool:
    """Reject landmark fits that cannot belong to the detected box (DFL's crop-area > 4x box-area test)."""
    m = transform_matrix(face.points, 1, FaceType.FULL)
    unit_side = 1.0 / np.sqrt(abs(np.linalg.det(m[:, :2])))  # crop side in image px
    box_side = np.sqrt(max(face.box.area, 1.0))
    return 0.5 < unit_side / box_side < 4.0
