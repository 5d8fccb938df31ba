"""MediaPipe FaceMesh topology: surface triangles, the left/right mirror of every vertex, and ordered contours.

Derived by ``tools/derive_facemesh_tables.py`` (triangles from the package's edge list, the mirror by measurement on
real faces); stored in ``facemesh.json``. The tessellation leaves the eyes and the mouth open: ``hole_strips`` closes
them with triangles between the upper and lower contours, which is what lets a lid shut or a jaw drop.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np

_TABLES = json.loads(resources.files("facelab.geometry").joinpath("facemesh.json").read_text())

N_VERTICES = 468  # without the 10 iris points of the refined model
TRIANGLES = np.array(_TABLES["triangles"], dtype=np.int64)  # (854, 3) vertex indices
MIRROR = np.array(_TABLES["mirror"], dtype=np.int64)  # (468,) vertex -> its mirror image (midline -> itself)
CONTOURS: dict[str, list[int]] = _TABLES["contours"]  # ordered vertex lists; "right" = the subject's right

LIPS_INNER = ("lips_inner_upper", "lips_inner_lower")
EYES = (("right_eye_upper", "right_eye_lower"), ("left_eye_upper", "left_eye_lower"))
MOUTH_CORNERS = (61, 291)  # outer lip corners (subject's right, left)
CHEEKS = (50, 280)  # cheek apples under the eyes


def strip(upper: list[int], lower: list[int]) -> np.ndarray:
    """Triangles between two contours that share their end points (a lid pair, an inner-lip pair): (2n - 4, 3)."""
    if len(upper) != len(lower) or upper[0] != lower[0] or upper[-1] != lower[-1]:
        raise ValueError("contours must have one length and share their end points")
    tris = [(upper[0], upper[1], lower[1])]
    for i in range(1, len(upper) - 2):
        tris += [(upper[i], upper[i + 1], lower[i]), (upper[i + 1], lower[i + 1], lower[i])]
    tris.append((upper[-2], upper[-1], lower[-2]))
    return np.array(tris, dtype=np.int64)


def hole_strips() -> dict[str, np.ndarray]:
    """Triangles closing the mouth and both eyes: {"mouth": (18, 3), "eyes": (28, 3)}."""
    mouth = strip(*(CONTOURS[k] for k in LIPS_INNER))
    eyes = np.concatenate([strip(CONTOURS[u], CONTOURS[lo]) for u, lo in EYES])
    return {"mouth": mouth, "eyes": eyes}
