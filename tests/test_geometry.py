"""Alignment math: Umeyama, face-type crops, pose."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facelab.geometry.facetype import MEAN_FACE_17_67, PADDING, FaceType, transform_matrix
from facelab.geometry.umeyama import apply_affine, invert_affine, umeyama


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx], [scale * math.sin(a), scale * math.cos(a), ty]])


@pytest.mark.parametrize("angle,scale,tx,ty", [(0, 1, 0, 0), (17, 2.5, 30, -12), (-140, 0.3, -5, 400)])
def test_umeyama_recovers_known_similarity(angle, scale, tx, ty):
    rng = np.random.default_rng(0)
    src = rng.uniform(-50, 50, (40, 2))
    m = _similarity(angle, scale, tx, ty)
    est = umeyama(src, apply_affine(m, src))
    np.testing.assert_allclose(est[:2], m, atol=1e-9)


def test_umeyama_least_squares_with_noise_and_no_reflection():
    rng = np.random.default_rng(1)
    src = rng.uniform(-1, 1, (68, 2))
    dst = src * [-1, 1]  # a mirror image: the best *similarity* must not reflect
    est = umeyama(src, dst)
    assert np.linalg.det(est[:2, :2]) > 0


def _template_face(m: np.ndarray) -> np.ndarray:
    """68 landmarks whose fitted points are exactly the mean face under similarity ``m`` (unit -> image)."""
    pts = np.zeros((68, 2))
    pts[17:68] = MEAN_FACE_17_67
    pts[:17] = np.linspace([0.0, 0.3], [1.0, 0.3], 17)  # jaw: unused by the fit
    return apply_affine(m, pts)


@pytest.mark.parametrize("ft", list(FaceType))
def test_crop_of_template_face_matches_dfl_coverage(ft):
    m = _similarity(23, 180, 400, 300)  # unit face -> image
    lmk = _template_face(m)
    size = 512
    t = transform_matrix(lmk, size, ft)
    # crop side in unit-face sides is (1 + 2*sqrt(2)*p); the scale of t is size / (that * 180)
    side_units = 1 + 2 * math.sqrt(2) * PADDING[ft]
    assert math.sqrt(abs(np.linalg.det(t[:, :2]))) == pytest.approx(size / (side_units * 180), rel=1e-9)
    # no rotation is left in the aligned face: the eyes line is horizontal
    aligned = apply_affine(t, lmk)
    eye_vec = aligned[45] - aligned[36]
    assert abs(eye_vec[1]) < 1e-6 * size
    if ft in (FaceType.HALF, FaceType.MID_FULL, FaceType.FULL):
        # unit-square centre lands at the crop centre
        c = apply_affine(t, apply_affine(m, np.array([[0.5, 0.5]])))[0]
        np.testing.assert_allclose(c, [size / 2, size / 2], atol=1e-6)
    if ft == FaceType.WHOLE_FACE:  # DFL: centre moved 7 % of a unit side toward the forehead -> y ~ 0.533 S
        c = apply_affine(t, apply_affine(m, np.array([[0.5, 0.5]])))[0]
        assert c[1] / size == pytest.approx(0.5 + 0.07 / side_units, abs=1e-6)


def test_round_trip_source_aligned_source_within_half_pixel(hopper, finder):
    from facelab.geometry.align import align_face

    face = finder.find(hopper)[0]
    img, t = align_face(hopper, face.points, "whole_face", 512)
    back = apply_affine(invert_affine(t), apply_affine(t, face.points))
    assert np.abs(back - face.points).max() < 0.5
    # and the pixels agree: a landmark's colour in the crop equals the source colour there (smooth region)
    nose = apply_affine(t, face.points[30:31])[0]
    src = hopper[int(round(face.points[30, 1])), int(round(face.points[30, 0]))].astype(int)
    dst = img[int(round(nose[1])), int(round(nose[0]))].astype(int)
    assert np.abs(src - dst).max() < 25


def test_face_type_aliases():
    assert FaceType.parse("wf") is FaceType.WHOLE_FACE
    assert FaceType.parse("full_face") is FaceType.FULL
    with pytest.raises(ValueError, match="unknown face type"):
        FaceType.parse("torso")


def test_head_pose_matches_aflw2000_ground_truth():
    """Yaw within 12 deg of AFLW2000-3D's fitted pose for its near-frontal to three-quarter faces."""
    import scipy.io

    from conftest import shared_path
    from facelab.geometry.pose import head_pose

    errs = []
    for mat in sorted(shared_path("landmarks/aflw2000_3d").glob("*.mat")):
        d = scipy.io.loadmat(mat)
        pts = d["pt3d_68"][:2].T - 1
        pitch_gt, yaw_gt = np.degrees(d["Pose_Para"][0][:2])
        yaw, pitch, _ = head_pose(pts, (450, 450))
        if abs(yaw_gt) < 50:
            errs.append(abs(yaw - yaw_gt))
        assert np.sign(yaw) == np.sign(yaw_gt) or abs(yaw_gt) < 3
    assert np.mean(errs) < 8 and max(errs) < 12
