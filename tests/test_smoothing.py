"""Temporal landmark smoothing: less jitter on a still face, little lag on a moving one, one filter per face."""

from __future__ import annotations

import numpy as np

from facelab.faces.detect.base import Box
from facelab.faces.smoothing import LandmarkSmoother, OneEuroFilter


def test_one_euro_removes_jitter_on_a_still_point():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(scale=100.0)
    raw = 50 + rng.normal(0, 1.0, (300, 68, 2))
    out = np.array([f(x, i / 30) for i, x in enumerate(raw)])
    jitter_raw = np.abs(np.diff(raw, axis=0)).mean()
    jitter_out = np.abs(np.diff(out[30:], axis=0)).mean()
    assert jitter_out < 0.35 * jitter_raw
    assert np.abs(out[30:].mean() - 50) < 0.2  # no bias


def test_one_euro_follows_fast_motion_with_small_lag():
    f = OneEuroFilter(scale=100.0)
    t = np.arange(60) / 30
    pos = 300 * t  # 3 face sizes per second: a fast head move
    out = np.array([f(np.full((68, 2), p), ti)[0, 0] for p, ti in zip(pos, t)])
    assert np.abs(out[20:] - pos[20:]).max() < 10  # px, on a 100 px face


def test_faces_are_tracked_separately_and_new_faces_start_fresh():
    s = LandmarkSmoother()
    a, b = Box(0, 0, 100, 100), Box(300, 0, 400, 100)
    pa, pb = np.full((68, 2), 50.0), np.full((68, 2), 350.0)
    for i in range(10):
        out = s(i / 30, [(a, pa), (b, pb)])
    np.testing.assert_allclose(out[0], pa)
    np.testing.assert_allclose(out[1], pb)
    # a face that appears elsewhere is not pulled towards an old track
    c = Box(600, 0, 700, 100)
    out = s(10 / 30, [(c, np.full((68, 2), 650.0))])
    np.testing.assert_allclose(out[0], 650.0)
