"""Face types and the aligned crop window, numerically equal to DeepFaceLab's so facesets interoperate.

The crop is defined from DFL's 51-point mean face in a unit square: a similarity fit of 33 landmarks (brows,
nose, eyes, mouth corners; never the jaw) gives the unit square in the frame, and each face type pads it.
"""

from __future__ import annotations

import json
import math
from enum import StrEnum
from importlib import resources

import numpy as np

from facelab.geometry.umeyama import apply_affine, invert_affine, umeyama


class FaceType(StrEnum):
    HALF = "half"
    MID_FULL = "mid_full"
    FULL = "full"
    WHOLE_FACE = "whole_face"
    HEAD = "head"

    @classmethod
    def parse(cls, name: str) -> FaceType:
        key = name.strip().lower().replace("-", "_")
        aliases = {
            "h": "half",
            "mf": "mid_full",
            "midfull": "mid_full",
            "f": "full",
            "wf": "whole_face",
            "whole": "whole_face",
            "half_face": "half",
            "full_face": "full",
            "midfull_face": "mid_full",
        }
        key = aliases.get(key, key)
        try:
            return cls(key)
        except ValueError:
            raise ValueError(f"unknown face type {name!r} (choose from h, mf, f, wf, head)") from None


# DFL padding per type: crop side = (1 + 2*sqrt(2)*p) unit-face sides.
PADDING = {
    FaceType.HALF: 0.0,
    FaceType.MID_FULL: 0.0675,
    FaceType.FULL: 0.2109375,
    FaceType.WHOLE_FACE: 0.40,
    FaceType.HEAD: 0.70,
}

# DFL's mean face, landmarks 17..67, unit square (x right, y down); the numbers are data, in facetype.json
_TABLES = json.loads(resources.files("facelab.geometry").joinpath("facetype.json").read_text())
MEAN_FACE_17_67 = np.array(_TABLES["mean_face_17_67"])

# Landmarks used by the fit: 17..48 and 54 (33 points).
FIT_INDICES = np.r_[17:49, 54]
_FIT_TEMPLATE = MEAN_FACE_17_67[FIT_INDICES - 17]


def unit_transform(landmarks68: np.ndarray) -> np.ndarray:
    """2x3 similarity mapping frame pixels to the mean face's unit square."""
    return umeyama(np.asarray(landmarks68, dtype=np.float64)[FIT_INDICES], _FIT_TEMPLATE)[:2]


def transform_matrix(landmarks68: np.ndarray, size: int, face_type: FaceType | str, scale: float = 1.0) -> np.ndarray:
    """2x3 matrix mapping frame pixels to a ``size`` x ``size`` aligned crop of ``face_type``.

    ``scale`` > 1 shrinks the face inside the crop (DFL's merge "output face scale").
    """
    face_type = FaceType.parse(face_type) if isinstance(face_type, str) else face_type
    lmk = np.asarray(landmarks68, dtype=np.float64)
    to_unit = unit_transform(lmk)
    from_unit = invert_affine(to_unit)
    p0, p1, p2, p3, c = apply_affine(from_unit, np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5]], float))
    tb = (p2 - p0) / np.linalg.norm(p2 - p0)  # diagonal top-left -> bottom-right
    bt = (p1 - p3) / np.linalg.norm(p1 - p3)  # diagonal bottom-left -> top-right
    mod = np.linalg.norm(p0 - p2) * (PADDING[face_type] * math.sqrt(2.0) + 0.5) / scale
    if face_type == FaceType.WHOLE_FACE:
        c = c + 0.07 * (p0 - p3)  # towards the forehead
    elif face_type == FaceType.HEAD:
        u = apply_affine(to_unit, lmk)
        left = np.mean([u[27 + k, 0] - u[k, 0] for k in range(3)])
        right = np.mean([u[16 - k, 0] - u[27 + k, 0] for k in range(3)])
        yaw_shift = (right - left) * abs(math.tanh(2.0 * (right - left)))
        c = c + (yaw_shift / 2.0) * (p1 - p0) + 0.5 * (p0 - p3)
    tl, tr, br = c - tb * mod, c + bt * mod, c + tb * mod
    src = np.array([tl, tr, br], dtype=np.float64)
    dst = np.array([[0, 0], [size, 0], [size, size]], dtype=np.float64)
    return _affine_from_3(src, dst)


def _affine_from_3(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    a = np.hstack([src, np.ones((3, 1))])
    return np.linalg.solve(a, dst).T
