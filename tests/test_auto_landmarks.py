"""The auto landmark rule (faces/finder.py): when dlib is unsure, and when FaceMesh's points win."""

import numpy as np

from facelab.faces.finder import REFINE_SHIFT, SWITCH_DISAGREE, disagree, unsure
from facelab.geometry.landmarks68 import MEAN_FACE_3D


def _face(scale: float = 100.0) -> np.ndarray:
    return MEAN_FACE_3D[:, :2] * scale + 200.0  # outer eye corners `scale` px apart


def test_unsure_when_the_refine_pass_moves_the_points():
    pts = _face()
    iod = np.linalg.norm(pts[45] - pts[36])
    assert not unsure(pts, pts + 0.5 * REFINE_SHIFT * iod / np.sqrt(2))
    assert unsure(pts, pts + 2 * REFINE_SHIFT * iod / np.sqrt(2))


def test_facemesh_wins_only_on_real_disagreement():
    pts = _face()
    iod = np.linalg.norm(pts[45] - pts[36])
    rng = np.random.default_rng(0)
    small = rng.normal(0, 0.3 * SWITCH_DISAGREE * iod / np.sqrt(2), pts.shape)
    assert not disagree(pts, pts + small)
    assert disagree(pts, pts + np.array([2 * SWITCH_DISAGREE * iod, 0.0]))
    # scale-free: the same relative offsets on a face half the size
    assert disagree(_face(50.0), _face(50.0) + np.array([SWITCH_DISAGREE * 100.0, 0.0]))
