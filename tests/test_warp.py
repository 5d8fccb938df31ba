"""Sample geometry (affine, random grid warp, flip) and photometric augmentations."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from facelab.imaging.warp import (
    MIN_WARP_SIZE,
    WarpParams,
    apply_warp,
    gen_warp_params,
    motion_kernel,
    random_blur,
    random_degrade,
    random_downsample,
    random_hsv,
    random_jpeg,
    random_noise,
    random_shading,
)

S = 128
FACE = cv2.resize(data.astronaut()[:256, 100:356], (S, S), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _angle_scale(m: np.ndarray) -> tuple[float, float]:
    # getRotationMatrix2D: [[s cos a, s sin a], [-s sin a, s cos a]]
    return float(np.degrees(np.arctan2(m[0, 1], m[0, 0]))), float(np.hypot(m[0, 0], m[0, 1]))


def _identity(size: int = S) -> WarpParams:
    return WarpParams(size=size, mapx=None, mapy=None, matrix=np.array([[1.0, 0, 0], [0, 1.0, 0]]), flip=False)


def test_nothing_requested_leaves_the_image_unchanged():
    p = gen_warp_params(S, _rng(), flip_prob=1.0)
    out = apply_warp(FACE, p, warp=False, transform=False, flip=False)
    np.testing.assert_array_equal(out, FACE)
    assert out is not FACE and out.dtype == FACE.dtype


def test_identity_params_are_identity_through_opencv():
    out = apply_warp(FACE, _identity(), warp=True, transform=True, flip=True)
    assert np.abs(out - FACE).max() < 1e-5


def test_flip_flips_only_when_drawn():
    flipped = gen_warp_params(S, _rng(), flip_prob=1.0)
    np.testing.assert_array_equal(apply_warp(FACE, flipped, False, False, True), FACE[:, ::-1])
    kept = gen_warp_params(S, _rng(), flip_prob=0.0)
    np.testing.assert_array_equal(apply_warp(FACE, kept, False, False, True), FACE)
    rate = np.mean([gen_warp_params(S, _rng(i), random_warp=False).flip for i in range(400)])
    assert 0.33 < rate < 0.47  # DFL's 40 %


def test_params_are_reproducible_per_seed():
    a, b, c = gen_warp_params(S, _rng(3)), gen_warp_params(S, _rng(3)), gen_warp_params(S, _rng(4))
    np.testing.assert_array_equal(a.matrix, b.matrix)
    np.testing.assert_array_equal(a.mapx, b.mapx)
    np.testing.assert_array_equal(a.mapy, b.mapy)
    assert a.flip == b.flip
    assert not np.array_equal(a.matrix, c.matrix)
    # the affine and flip do not depend on whether the grid warp is drawn
    d = gen_warp_params(S, _rng(3), random_warp=False)
    np.testing.assert_array_equal(a.matrix, d.matrix)
    assert d.mapx is None and d.flip == a.flip


def test_random_warp_displacement_is_nonzero_but_bounded():
    ii = np.arange(S, dtype=np.float32)
    for seed in range(20):
        p = gen_warp_params(S, _rng(seed))
        disp = np.hypot(p.mapx - ii[None, :], p.mapy - ii[:, None])
        assert 0.1 < disp.mean() < 0.1 * S
        # the border stays (nearly) in place: only interior knots move
        assert max(disp[0].max(), disp[-1].max(), disp[:, 0].max(), disp[:, -1].max()) < 1.0
    out = apply_warp(FACE, p, warp=True, transform=False, flip=False)
    assert np.abs(out - FACE).mean() > 0.005


def test_affine_stays_within_configured_ranges():
    angles, scales, shifts = [], [], []
    for seed in range(300):
        p = gen_warp_params(S, _rng(seed), random_warp=False)
        a, s = _angle_scale(p.matrix)
        centre = p.matrix @ np.array([S // 2, S // 2, 1.0])
        angles.append(a)
        scales.append(s)
        shifts.append(centre - S // 2)
    angles, scales, shifts = np.array(angles), np.array(scales), np.abs(np.array(shifts))
    assert angles.min() >= -10 and angles.max() <= 10 and np.ptp(angles) > 15
    assert scales.min() >= 1 / 1.15 - 1e-9 and scales.max() <= 1.15 + 1e-9 and np.ptp(scales) > 0.2
    assert shifts.max() <= 0.05 * S + 1e-9 and shifts.max() > 0.04 * S


def test_target_shares_affine_and_flip_but_not_the_warp():
    p = gen_warp_params(S, _rng(1), flip_prob=1.0)
    net_in = apply_warp(FACE, p, warp=True, transform=True, flip=True)
    target = apply_warp(FACE, p, warp=False, transform=True, flip=True)
    m = cv2.warpAffine(FACE, p.matrix, (S, S), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)[:, ::-1]
    np.testing.assert_array_equal(target, m)
    assert np.abs(net_in - target).mean() > 0.005


def test_masks_keep_shape_and_zero_border():
    mask = np.ones((S, S, 1), np.float32)
    p = gen_warp_params(S, _rng(2), rotation_range=(30.0, 30.0))
    out = apply_warp(mask, p, True, True, True, border=cv2.BORDER_CONSTANT, interpolation=cv2.INTER_LINEAR)
    assert out.shape == (S, S, 1)
    assert out[0, 0, 0] == 0.0 and out[S // 2, S // 2, 0] == pytest.approx(1.0)


def test_small_samples_are_warped_at_64_px():
    small = cv2.resize(FACE, (32, 32), interpolation=cv2.INTER_AREA)
    p = gen_warp_params(32, _rng(0))
    assert p.size == MIN_WARP_SIZE and p.mapx.shape == (64, 64)
    out = apply_warp(small, p, True, True, True)
    assert out.shape == small.shape and out.dtype == np.float32


def test_hsv_power_zero_is_identity_and_power_changes_colour():
    np.testing.assert_array_equal(random_hsv(FACE, 0.0, _rng()), FACE)
    out = random_hsv(FACE, 0.3, _rng(1))
    assert out.shape == FACE.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.abs(out - FACE).mean() > 0.01


DEGRADATIONS = [random_blur, random_noise, random_jpeg, random_downsample]


@pytest.mark.parametrize("fn", DEGRADATIONS)
def test_degradations_keep_shape_dtype_range_and_change_the_image(fn):
    for seed in range(6):  # covers each branch (motion/gaussian, gaussian/laplace/poisson)
        out = fn(FACE, _rng(seed))
        assert out.shape == FACE.shape and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0
        assert np.abs(out - FACE).mean() > 0.003


@pytest.mark.parametrize("fn", DEGRADATIONS)
def test_degradations_are_reproducible_and_handle_one_channel(fn):
    np.testing.assert_array_equal(fn(FACE, _rng(9)), fn(FACE, _rng(9)))
    gray = FACE[..., :1].copy()
    assert fn(gray, _rng(9)).shape == gray.shape


def test_blurs_and_downsample_remove_detail():
    def detail(img: np.ndarray) -> float:
        return float(np.abs(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_32F)).mean())

    for seed in range(4):
        assert detail(random_blur(FACE, _rng(seed))) < 0.5 * detail(FACE)
        assert detail(random_downsample(FACE, _rng(seed))) < 0.7 * detail(FACE)


def test_motion_kernel_is_a_normalised_line():
    k = motion_kernel(15, 0.0)
    assert k.sum() == pytest.approx(1.0)
    assert np.count_nonzero(k.sum(axis=1)) == 1  # horizontal line
    k90 = motion_kernel(15, 90.0)
    assert np.count_nonzero(k90.sum(axis=0) > 1e-3) <= 2  # vertical line


def test_random_degrade_respects_probabilities():
    np.testing.assert_array_equal(random_degrade(FACE, _rng()), FACE)
    out = random_degrade(FACE, _rng(), blur=1.0, noise=1.0, jpeg=1.0, downsample=1.0)
    assert out.shape == FACE.shape and np.abs(out - FACE).mean() > 0.01


def test_random_shading_darkens_one_side_by_at_most_depth() -> None:
    img = np.full((64, 64, 3), 0.8, np.float32)
    out = random_shading(img, 0.5, np.random.default_rng(3))
    ratio = out[..., 0] / 0.8
    assert out.shape == img.shape and out.dtype == np.float32
    assert ratio.max() == pytest.approx(1.0, abs=1e-5) and 0.5 - 1e-5 <= ratio.min() < 1.0  # lit side kept
    corners = sorted(ratio[[0, 0, -1, -1], [0, -1, 0, -1]])
    assert corners[-1] - corners[0] > 0.5 * (1 - ratio.min())  # a ramp across the image, not a uniform dimming
    np.testing.assert_array_equal(random_shading(img, 0.0, np.random.default_rng(3)), img)
    gray = random_shading(img[..., 0], 0.5, np.random.default_rng(3))
    np.testing.assert_allclose(gray, out[..., 0], atol=1e-6)
