"""Temporal smoothing of landmarks across video frames: faces are tracked by box overlap and each track's
landmarks go through a One Euro filter (Casiez et al., 2012): strong smoothing when the face is still (no
jitter), little when it moves fast (no lag). Positions are filtered in units of the face size, so the same
settings work for small and large faces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from facelab.faces.detect.base import Box


def _alpha(cutoff_hz: float, dt: float) -> float:
    tau = 1.0 / (2 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt)


@dataclass
class OneEuroFilter:
    """One Euro filter over an array of positions; ``scale`` converts positions to the units ``beta`` expects."""

    scale: float = 1.0  # position units per face size
    min_cutoff: float = 1.0  # Hz, at rest
    beta: float = 4.0  # cutoff increase per (face size / s) of speed
    d_cutoff: float = 1.0  # Hz, for the speed estimate
    _x: np.ndarray | None = field(default=None, repr=False)
    _dx: np.ndarray | None = field(default=None, repr=False)
    _t: float | None = field(default=None, repr=False)

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        scale = self.scale
        x = np.asarray(x, dtype=np.float64) / scale
        if self._x is None or self._t is None or t <= self._t:
            self._x, self._dx, self._t = x, np.zeros_like(x), t
            return x * scale
        dt = t - self._t
        dx = (x - self._x) / dt
        a_d = _alpha(self.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        speed = np.linalg.norm(self._dx, axis=-1, keepdims=True)
        a = (
            _alpha(self.min_cutoff, dt)
            if self.beta == 0
            else 1.0 / (1.0 + (1.0 / (2 * math.pi * (self.min_cutoff + self.beta * speed))) / dt)
        )
        self._x = a * x + (1 - a) * self._x
        self._t = t
        return self._x * scale


@dataclass
class _Track:
    box: Box
    filt: OneEuroFilter
    last_seen: float


class LandmarkSmoother:
    """Smooths the landmarks of every face in a video, frame by frame, in frame order."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 4.0, max_gap_s: float = 0.25) -> None:
        self.min_cutoff, self.beta, self.max_gap_s = min_cutoff, beta, max_gap_s
        self._tracks: list[_Track] = []

    def __call__(self, t: float, faces: list[tuple[Box, np.ndarray]]) -> list[np.ndarray]:
        """Smoothed landmarks for each (box, landmarks) of the frame at time ``t`` (seconds), same order."""
        self._tracks = [tr for tr in self._tracks if t - tr.last_seen <= self.max_gap_s and t > tr.last_seen]
        free = list(self._tracks)
        out = []
        for box, pts in faces:
            best = max(free, key=lambda tr: tr.box.iou(box), default=None)
            if best is None or best.box.iou(box) < 0.3:
                scale = max(box.width, box.height, 1.0)  # fixed per track: units stay consistent
                best = _Track(box, OneEuroFilter(scale, self.min_cutoff, self.beta), t)
                self._tracks.append(best)
            else:
                free.remove(best)
            out.append(best.filt(pts, t))
            best.box, best.last_seen = box, t
        return out
