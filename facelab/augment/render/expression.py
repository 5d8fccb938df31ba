"""Expression edits as displacements of the FaceMesh vertices, in the head frame (IOD units, y down, z back).

Each edit is a pure function ``(head-frame vertices (468, 3), strength in [0, 1]) -> displacement (468, 3)``; the
renderer adds it before turning the head. Amplitudes are set so that strength 1 is a clear but natural expression:
a smile widens the mouth by about a fifth, a fully open mouth drops the chin by about a quarter IOD.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from facelab.geometry.facemesh import CHEEKS, CONTOURS, EYES, LIPS_INNER, MOUTH_CORNERS
from facelab.geometry.polygon import points_in_polygon

Edit = Callable[[np.ndarray, float], np.ndarray]

SMILE_CORNER = np.array([0.085, -0.075, 0.04])  # corner moves out (x, signed by side), up and back
SMILE_CHEEK = np.array([0.0, -0.05, -0.02])  # cheek apples rise and round out
SMILE_SIGMA, CHEEK_SIGMA = 0.22, 0.3
JAW_HINGE = np.array([0.0, 0.45, 1.0])  # temporomandibular joints, in front of the ears
JAW_DEGREES = 20.0
JAW_BAND = 0.2  # below the lip line the jaw's share rises to 1 over this band
LID_SIGMA = 0.1
LID_CLOSE = 0.92  # an upper lid at strength 1 travels this share of the way to the lower lid


def _gauss(h: np.ndarray, at: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-np.sum((h - at) ** 2, axis=1) / (2 * sigma**2))


def smile(h: np.ndarray, strength: float) -> np.ndarray:
    """Mouth corners up and out, cheeks up."""
    d = np.zeros_like(h)
    for c in MOUTH_CORNERS:
        side = np.sign(h[c, 0] - h[:, 0].mean()) or 1.0
        d += _gauss(h, h[c], SMILE_SIGMA)[:, None] * (SMILE_CORNER * [side, 1, 1])
    for c in CHEEKS:
        d += _gauss(h, h[c], CHEEK_SIGMA)[:, None] * SMILE_CHEEK
    return strength * d


def jaw_share(h: np.ndarray) -> np.ndarray:
    """How much of the jaw's motion each vertex follows: 0 above the lip line and on the upper lip, 1 on the whole
    lower lip (every vertex inside its outer and inner contours) and below it, rising over ``JAW_BAND`` below the
    line elsewhere."""
    upper, lower = (CONTOURS[k] for k in LIPS_INNER)
    line = h[upper + lower, 1].mean()
    t = np.clip((h[:, 1] - line) / JAW_BAND, 0.0, 1.0)
    w = t * t * (3 - 2 * t)
    lower_lip = np.array(CONTOURS["lips_outer_lower"] + lower[::-1])
    upper_lip = np.array(CONTOURS["lips_outer_upper"] + upper[::-1])
    w[points_in_polygon(h[:, :2], h[lower_lip, :2])] = 1.0
    w[points_in_polygon(h[:, :2], h[upper_lip, :2])] = 0.0
    w[CONTOURS["lips_outer_upper"] + upper] = 0.0
    w[CONTOURS["lips_outer_lower"] + lower] = 1.0
    w[[upper[0], upper[-1], *MOUTH_CORNERS]] = 0.5  # the corners stretch between both lips
    return w


def mouth_open(h: np.ndarray, strength: float) -> np.ndarray:
    """The jaw turns down about the hinge axis (head x); lower lip, chin and jaw line follow by ``jaw_share``."""
    a = np.radians(JAW_DEGREES * strength)
    rel = h - JAW_HINGE
    # rotation about x that carries the chin (below and in front of the hinge) down and back
    turned = np.column_stack(
        [rel[:, 0], rel[:, 1] * np.cos(a) - rel[:, 2] * np.sin(a), rel[:, 1] * np.sin(a) + rel[:, 2] * np.cos(a)]
    )
    return (turned - rel) * jaw_share(h)[:, None]


def eyes_closed(h: np.ndarray, strength: float) -> np.ndarray:
    """Each upper lid slides onto its lower lid; the skin up to the brow follows with a Gaussian falloff and the
    lower lid stays."""
    d = np.zeros_like(h)
    for up, lo in EYES:
        upper, lower = np.array(CONTOURS[up]), np.array(CONTOURS[lo])
        pull = np.zeros_like(h)
        pull[upper] = LID_CLOSE * (h[lower] - h[upper])
        pull[[upper[0], upper[-1]]] = 0.0  # the corners are shared with the lower lid
        g = np.exp(-np.sum((h[:, None] - h[upper][None]) ** 2, axis=2) / (2 * LID_SIGMA**2))  # (N, lid points)
        moved = g @ pull[upper] / np.maximum(g.sum(1, keepdims=True), 1.0)
        moved[upper] = pull[upper]  # the lid itself goes all the way; the smoothing is for the skin around it
        below = h[:, 1] > h[lower, 1].mean()  # the lower lid and the cheek under it do not move
        moved[below | np.isin(np.arange(len(h)), lower)] = 0.0
        d += moved
    return strength * d


EDITS: dict[str, Edit] = {"smile": smile, "mouth-open": mouth_open, "eyes-closed": eyes_closed}
