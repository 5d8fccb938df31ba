"""Detection + landmarks + refinement for one image: the part of extraction every stage reuses.

The default landmark model, ``auto``, is dlib's 68-point predictor (precise on easy faces: ~2.8 % median NME) with
MediaPipe FaceMesh as the fallback where dlib breaks (a face looking down in poor light, a near-profile, a tilted
smile: 30-150 % NME where FaceMesh stays under 14 %). The rule, chosen by ``benchmarks/landmarks.py`` on 159
human-annotated faces (split-half checked), costs nothing on most faces: dlib's refine pass already tells when its
fit is unsure, because a second pass on the aligned crop moves the points (``REFINE_SHIFT``, in inter-ocular
distances; good fits move < 0.033 in 9 of 10 faces). Only then FaceMesh runs, and its points replace dlib's when the
two disagree by more than ``SWITCH_DISAGREE``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facelab.faces.detect import Box, make_detector
from facelab.faces.landmarks import LANDMARKERS, Landmarker, make_landmarker
from facelab.geometry.facetype import FaceType, transform_matrix
from facelab.geometry.landmarks68 import REFINE_BOX_256
from facelab.geometry.umeyama import apply_affine, invert_affine

REFINE_SIZE = 256
AUTO = "auto"  # dlib68, FaceMesh where dlib is unsure and the two disagree (see the module docstring)
REFINE_SHIFT = 0.05  # auto: a refine pass moving dlib's points more than this (IOD) makes FaceMesh look too
SWITCH_DISAGREE = 0.10  # auto: ... and FaceMesh's points win when the two differ by more than this (IOD)


@dataclass
class FoundFace:
    box: Box
    points: np.ndarray  # (68, 2) image px
    mesh: np.ndarray | None = None  # (N, 3) image px, if the landmark model is dense
    landmarker: str = ""  # the model whose points these are ("dlib68+refine", "facemesh", ...)


class FaceFinder:
    """Finds faces and their 68 landmarks in RGB images.

    With ``refine`` the landmark model runs a second time on a FULL-face crop aligned with the first result
    and the points are mapped back: the model then always sees the face upright, centred and at one scale,
    which makes it more accurate on tilted faces and steadier across video frames.
    """

    def __init__(
        self, detector: str = "mediapipe", landmarker: str = AUTO, refine: bool = True, min_face: int = 24
    ) -> None:
        if landmarker != AUTO and landmarker not in LANDMARKERS:
            raise ValueError(f"unknown landmark model {landmarker!r} (choose from {AUTO}, {', '.join(LANDMARKERS)})")
        self.detector = make_detector(detector)
        self.auto = landmarker == AUTO
        self.landmarker = make_landmarker("dlib68" if self.auto else landmarker)
        self._fallback: Landmarker | None = None  # auto: FaceMesh, made on first need
        self.refine = refine
        self.min_face = min_face

    @property
    def names(self) -> tuple[str, str]:
        return self.detector.name, AUTO if self.auto else self.landmarker.name

    def find(self, image: np.ndarray, max_faces: int = 0) -> list[FoundFace]:
        boxes = [b for b in self.detector.detect(image) if min(b.width, b.height) >= self.min_face]
        if max_faces:
            boxes = boxes[:max_faces]
        faces = []
        for box in boxes:
            face = self._landmarks(image, box)
            if face is not None and plausible(face):
                faces.append(face)
        return faces

    def _landmarks(self, image: np.ndarray, box: Box) -> FoundFace | None:
        lm = self.landmarker.landmarks(image, box)
        if lm is None:
            return None
        name = self.landmarker.name
        first = FoundFace(box, lm.points, lm.mesh, name)
        if not self.refine:
            return first
        face = self._refine(image, first, self.landmarker)
        if self.auto and unsure(first.points, face.points):
            mesh = self._facemesh().landmarks(image, box)
            if mesh is not None and disagree(face.points, mesh.points):
                return FoundFace(box, mesh.points, mesh.mesh, self._facemesh().name)
        return face

    def _facemesh(self) -> Landmarker:
        if self._fallback is None:
            self._fallback = make_landmarker("facemesh")
        return self._fallback

    def _refine(self, image: np.ndarray, face: FoundFace, landmarker: Landmarker) -> FoundFace:
        m = transform_matrix(face.points, REFINE_SIZE, FaceType.FULL)
        crop = cv2.warpAffine(
            image, m, (REFINE_SIZE, REFINE_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        lm = landmarker.landmarks(crop, Box(*REFINE_BOX_256, score=1.0, source="dlib-hog"))
        if lm is None:
            return face
        inv = invert_affine(m)
        mesh = None
        if lm.mesh is not None:
            mesh = lm.mesh.copy()
            mesh[:, :2] = apply_affine(inv, mesh[:, :2])
            mesh[:, 2] *= np.sqrt(abs(np.linalg.det(inv[:, :2])))
        name = f"{landmarker.name}+refine"
        return FoundFace(face.box, apply_affine(inv, lm.points), mesh if mesh is not None else face.mesh, name)

    def close(self) -> None:
        self.detector.close()
        self.landmarker.close()
        if self._fallback is not None:
            self._fallback.close()


def _iod(points: np.ndarray) -> float:
    return max(float(np.linalg.norm(points[45] - points[36])), 1e-6)


def _mean_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b, axis=1).mean())


def unsure(first: np.ndarray, refined: np.ndarray) -> bool:
    """Whether dlib's refine pass moved its points by more than ``REFINE_SHIFT`` IOD (an unsure fit)."""
    return _mean_distance(first, refined) / _iod(refined) > REFINE_SHIFT


def disagree(dlib_points: np.ndarray, mesh_points: np.ndarray) -> bool:
    """Whether FaceMesh's 68 points differ from dlib's by more than ``SWITCH_DISAGREE`` IOD (dlib's IOD)."""
    return _mean_distance(dlib_points, mesh_points) / _iod(dlib_points) > SWITCH_DISAGREE


def plausible(face: FoundFace) -> bool:
    """Reject landmark fits that cannot belong to the detected box (DFL's crop-area > 4x box-area test)."""
    m = transform_matrix(face.points, 1, FaceType.FULL)
    unit_side = 1.0 / np.sqrt(abs(np.linalg.det(m[:, :2])))  # crop side in image px
    box_side = np.sqrt(max(face.box.area, 1.0))
    return 0.5 < unit_side / box_side < 4.0
