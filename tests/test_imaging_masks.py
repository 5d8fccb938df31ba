"""facelab.imaging.masks: landmark masks on the mean face placed in a 256 px image."""

from __future__ import annotations

import numpy as np

from facelab.geometry.facetype import MEAN_FACE_17_67
from facelab.imaging.masks import eyes_mouth_mask, hull_mask, inner_face_mask

S = 256


def _face() -> np.ndarray:
    """68 points: the mean face's brows to mouth and a half-ellipse jaw below them, scaled into an S x S image."""
    unit = np.zeros((68, 2))
    unit[17:68] = MEAN_FACE_17_67
    t = np.linspace(0.0, np.pi, 17)
    unit[:17] = np.stack([0.5 - 0.55 * np.cos(t), 0.35 + 0.75 * np.sin(t)], axis=1)
    return (unit - 0.5) * S * 0.5 + S / 2


def _at(mask: np.ndarray, point: np.ndarray) -> float:
    x, y = np.round(point).astype(int)
    return float(mask[y, x])


def test_inner_face_mask_covers_eyes_nose_mouth_but_not_the_jaw():
    lmk = _face()
    inner, hull = inner_face_mask((S, S), lmk), hull_mask((S, S), lmk, brow_expand=0.0)
    assert inner.dtype == np.float32 and set(np.unique(inner)) == {0.0, 1.0}
    for centre in (lmk[36:42].mean(0), lmk[42:48].mean(0), lmk[30], lmk[60:68].mean(0)):
        assert _at(inner, centre) == 1.0
    for jaw in (lmk[2], lmk[8], lmk[14]):  # the jaw line, where a merge's blend seam lies
        assert _at(inner, jaw) == 0.0
    assert inner.sum() < 0.8 * hull.sum()
    assert (inner <= hull + 1e-6).mean() > 0.99  # inside the hull apart from rasterisation at shared edges


def test_eyes_mouth_mask_is_soft_and_stays_on_the_inner_face():
    lmk = _face()
    em = eyes_mouth_mask((S, S), lmk)
    assert _at(em, lmk[36:42].mean(0)) > 0.9 and _at(em, lmk[30]) < 0.5  # eyes in, nose tip mostly out
    assert em.min() >= 0.0 and em.max() <= 1.0 and ((em > 0) & (em < 1)).any()  # in [0, 1], blurred edges
    assert (em[inner_face_mask((S, S), lmk) == 0] > 0.5).mean() < 0.01  # lids and lips, not the cheeks
