"""Eye and mouth aspect ratios (facelab.geometry.openness) and the follow correlation of evaluate's metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facelab.evaluate.metrics import follow_correlation
from facelab.geometry.openness import eye_aspect_ratio, mouth_aspect_ratio


def _close_eyes(lm: np.ndarray) -> np.ndarray:
    """Each upper lid point meets the lower one facing it (a blink)."""
    out = lm.copy()
    for a, b in ((37, 41), (38, 40), (43, 47), (44, 46)):
        out[a] = out[b] = (lm[a] + lm[b]) / 2
    return out


@pytest.fixture(scope="module")
def face_points(hopper, finder) -> np.ndarray:
    return finder.find(hopper)[0].points.astype(np.float64)


def test_open_eyes_and_closed_mouth_of_a_real_portrait(face_points: np.ndarray) -> None:
    assert 0.18 < eye_aspect_ratio(face_points) < 0.45  # Grace Hopper looks at the camera
    assert mouth_aspect_ratio(face_points) < 0.15  # lips closed


def test_a_blink_drives_the_eye_ratio_to_zero(face_points: np.ndarray) -> None:
    assert eye_aspect_ratio(_close_eyes(face_points)) == pytest.approx(0.0, abs=1e-9)


def test_opening_the_mouth_raises_its_ratio(face_points: np.ndarray) -> None:
    lm = face_points.copy()
    width = np.linalg.norm(lm[64] - lm[60])
    lm[[65, 66, 67]] += [0.0, 0.4 * width]  # lower inner lip down by 0.4 mouth widths
    assert mouth_aspect_ratio(lm) == pytest.approx(mouth_aspect_ratio(face_points) + 0.4, abs=0.02)


def test_ratios_ignore_scale_rotation_and_batch(face_points: np.ndarray) -> None:
    a = math.radians(25)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    moved = 3.5 * face_points @ rot.T + [40.0, -7.0]
    for f in (eye_aspect_ratio, mouth_aspect_ratio):
        assert f(moved) == pytest.approx(f(face_points), rel=1e-9)
        np.testing.assert_allclose(f(np.stack([face_points, moved])), [f(face_points)] * 2, rtol=1e-9)


def test_follow_correlation() -> None:
    d = np.array([0.30, 0.31, 0.05, 0.29, 0.30, 0.08, 0.32])  # two blinks
    assert follow_correlation(2 * d + 1, d) == pytest.approx(1.0)
    assert follow_correlation(-d, d) == pytest.approx(-1.0)
    assert math.isnan(follow_correlation(np.full(7, 0.3), d))  # eyes that never close follow nothing
    assert math.isnan(follow_correlation(d[:2], d[:2]))
    with_nan = np.r_[d, np.nan]
    assert follow_correlation(with_nan, np.r_[d, 0.3]) == pytest.approx(1.0)  # an undetected frame is left out
