"""Head pose (yaw, pitch, roll in degrees) from 68 landmarks by solvePnP against a 3D mean face."""

from __future__ import annotations

import math

import cv2
import numpy as np

from facelab.geometry.landmarks68 import MEAN_FACE_3D

# Rigid points only: brows, nose, eye corners, mouth corners. The jaw follows the silhouette (not a fixed
# surface point) and lids and lips move with expression.
POSE_INDICES = np.r_[17:27, 27:36, 36, 39, 42, 45, 48, 54]


def head_pose(landmarks68: np.ndarray, image_size: tuple[int, int]) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees for 68 landmarks in an image of (width, height).

    Signs follow AFLW2000-3D's ``Pose_Para`` (checked against its eight images in the tests): pitch > 0 looking up;
    0, 0, 0 is a frontal face.
    """
    w, h = image_size
    f = float(max(w, h))
    cam = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], dtype=np.float64)
    obj = MEAN_FACE_3D[POSE_INDICES].astype(np.float64)
    img = np.asarray(landmarks68, dtype=np.float64)[POSE_INDICES]
    # Initialise at a frontal pose at a plausible distance so the iterative solver does not flip behind the camera.
    scale = np.linalg.norm(img[POSE_INDICES.tolist().index(45)] - img[POSE_INDICES.tolist().index(36)])
    tz = f / max(scale, 1e-6)
    c = img.mean(0)
    t0 = np.array([(c[0] - w / 2) * tz / f, (c[1] - h / 2) * tz / f, tz])
    ok, rvec, tvec = cv2.solvePnP(
        obj, img, cam, None, rvec=np.zeros(3), tvec=t0, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE
    )
    if not ok:
        return 0.0, 0.0, 0.0
    r, _ = cv2.Rodrigues(rvec)
    return rotation_to_ypr(r)


def rotation_to_ypr(r: np.ndarray) -> tuple[float, float, float]:
    """Euler angles of a model-to-camera rotation (camera x right, y down, z forward), as R = Rz(roll) Ry(yaw) Rx(pitch),
    converted to the AFLW sign convention."""
    yaw = math.asin(max(-1.0, min(1.0, -r[2, 0])))
    pitch = math.atan2(r[2, 1], r[2, 2])
    roll = math.atan2(r[1, 0], r[0, 0])
    return math.degrees(yaw), -math.degrees(pitch), math.degrees(roll)


def ypr_to_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The model-to-camera rotation with these angles (degrees, AFLW signs): the inverse of ``rotation_to_ypr``."""
    y, p, r = (math.radians(a) for a in (yaw, -pitch, roll))
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx
