"""Tables relating FaceMesh vertices, boxes and 3D shape to iBUG 68-point landmarks.

Derived by measurement with ``tools/derive_landmark_tables.py`` on 206 frames of the seven ``person_*`` clips
(dlib 68-point predictor vs FaceMesh on the same faces); rerun it to regenerate. Nothing here is copied.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np

# the per-point tables (68 entries each) are data, in landmarks68.json
_TABLES = json.loads(resources.files("facelab.geometry").joinpath("landmarks68.json").read_text())

# iBUG index -> FaceMesh vertex with the smallest median distance to it (median residual 0.9-5 % of the unit face).
MESH_TO_68: list[int] = _TABLES["mesh_to_68"]

# 3D mean face at the 68 points: x right, y down, z away from the camera (FaceMesh's depth), outer eye corners
# (36, 45) one unit apart.
MEAN_FACE_3D = np.array(_TABLES["mean_face_3d"])

# A BlazeFace box mapped to the box convention dlib's predictor was trained on (dlib HOG boxes):
# centre shift and side as multiples of the BlazeFace box width.
MP_TO_DLIB_BOX = {"dx": [-0.0192], "dy": [-0.0583], "side": [0.8904]}

# Mean dlib HOG box (x0, y0, x1, y1) inside a 256-px FULL aligned crop: the refinement pass re-runs the predictor
# with this box, so it starts from the same place on every frame.
REFINE_BOX_256 = (26.41, 26.1, 224.09, 220.24)
