"""Face alignment: the square crop of a face type, cut from an image by its 68 landmarks."""

from __future__ import annotations

import cv2
import numpy as np

from facelab.geometry.facetype import FaceType, transform_matrix

INTERP = {"cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4, "linear": cv2.INTER_LINEAR}


def align_face(
    image: np.ndarray, points: np.ndarray, face_type: FaceType | str, size: int, interpolation: str = "cubic"
) -> tuple[np.ndarray, np.ndarray]:
    """The aligned ``size`` x ``size`` crop of a face and its 2x3 source->crop matrix."""
    m = transform_matrix(points, size, face_type)
    face = cv2.warpAffine(image, m, (size, size), flags=INTERP[interpolation], borderMode=cv2.BORDER_CONSTANT)
    return face, m
