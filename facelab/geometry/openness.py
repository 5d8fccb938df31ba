"""How open the eyes and the mouth are, from 68 iBUG landmarks: the aspect ratios used to follow blinks and speech.

Both are ratios of distances within one feature, so they need no scale and barely move with yaw; they are the
standard measures (Soukupova & Cech 2016 for the eye). Inputs are ``(68, 2)`` or ``(..., 68, 2)`` arrays.
"""

from __future__ import annotations

import numpy as np

# per eye: the corners (p1, p4) and the two upper/lower lid pairs (p2-p6, p3-p5), iBUG numbering
_EYES = ((36, 39, (37, 41), (38, 40)), (42, 45, (43, 47), (44, 46)))
# inner lips: corners 60, 64 and three upper/lower pairs
_MOUTH_CORNERS = (60, 64)
_MOUTH_PAIRS = ((61, 67), (62, 66), (63, 65))


def _dist(lm: np.ndarray, a: int, b: int) -> np.ndarray:
    return np.linalg.norm(lm[..., a, :] - lm[..., b, :], axis=-1)


def eye_aspect_ratio(landmarks: np.ndarray) -> np.ndarray:
    """Mean over both eyes of (|p2-p6| + |p3-p5|) / (2 |p1-p4|): ~0.3 open, < 0.15 closed. Shape ``(...)``."""
    lm = np.asarray(landmarks, np.float64)
    ratios = [
        (_dist(lm, *upper) + _dist(lm, *lower)) / np.maximum(2 * _dist(lm, c0, c1), 1e-9)
        for c0, c1, upper, lower in _EYES
    ]
    return (ratios[0] + ratios[1]) / 2


def mouth_aspect_ratio(landmarks: np.ndarray) -> np.ndarray:
    """Mean inner-lip gap over the inner-mouth width: 0 closed, ~0.3 talking, > 0.6 wide open. Shape ``(...)``."""
    lm = np.asarray(landmarks, np.float64)
    gap = sum(_dist(lm, a, b) for a, b in _MOUTH_PAIRS) / len(_MOUTH_PAIRS)
    return gap / np.maximum(_dist(lm, *_MOUTH_CORNERS), 1e-9)


# closed | half | open eyes and closed | talking | open mouth, as aspect-ratio edges (eyes under 0.17 are shut
# in a blink on the clips of ../shared/data; a mouth over 0.35 is open wider than in speech)
EYE_EDGES = (0.17, 0.24)
MOUTH_EDGES = (0.10, 0.35)


def openness_bin(landmarks: np.ndarray) -> np.ndarray:
    """Expression bin ``3 * eye + mouth`` (0..8) of ``(..., 68, 2)`` landmarks, each part 0 closed, 1 half/talking,
    2 open: the groups that balanced training sampling draws from evenly."""
    eye = np.digitize(eye_aspect_ratio(landmarks), EYE_EDGES)
    mouth = np.digitize(mouth_aspect_ratio(landmarks), MOUTH_EDGES)
    return 3 * eye + mouth
