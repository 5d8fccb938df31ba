"""Merge blending: mask modes and DFL's mask processing, ROI-limited paste (bit-identical outside the mask box),
seamless paste, hist-match, sharpen, motion blur and color match. Photos from scikit-image (astronaut, coffee)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from skimage import data

from facelab.geometry.facetype import MEAN_FACE_17_67, transform_matrix
from facelab.merge.blend import (
    MASK_MODES,
    color_match,
    combine_masks,
    face_to_frame_matrix,
    hist_match,
    motion_blur,
    paste,
    process_mask,
    seamless_paste,
    sharpen,
    warp_mask,
)

S = 128


def _square(rgb: np.ndarray, size: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    k = min(h, w)
    sq = rgb[(h - k) // 2 : (h - k) // 2 + k, (w - k) // 2 : (w - k) // 2 + k]
    return cv2.resize(sq, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _ellipse(shape: tuple[int, int], center: tuple[int, int], axes: tuple[int, int], angle: float = 0.0):
    m = np.zeros(shape, np.uint8)
    cv2.ellipse(m, center, axes, angle, 0, 360, 1, -1)
    return m.astype(np.float32)


ASTRONAUT = _square(data.astronaut(), S)
COFFEE = _square(data.coffee(), S)
FACE_MASK = _ellipse((S, S), (64, 60), (34, 46))
REF_MASK = _ellipse((S, S), (70, 64), (50, 30), 20.0)
# a 720p frame: the astronaut stretched, smoothed so a crop -> paste round trip is close to exact
FRAME = cv2.GaussianBlur(cv2.resize(data.astronaut(), (1280, 720), interpolation=cv2.INTER_AREA), (0, 0), 1.5)


def _landmarks(center=(640.0, 330.0), side=160.0, angle_deg=12.0) -> np.ndarray:
    """68 points: the mean face (the part the crop fit uses) rotated/scaled into the frame; a plausible jaw."""
    unit = np.zeros((68, 2))
    unit[17:68] = MEAN_FACE_17_67
    t = np.linspace(0.0, np.pi, 17)
    unit[:17] = np.stack([0.5 - 0.55 * np.cos(t), 0.35 + 0.75 * np.sin(t)], axis=1)
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (unit - 0.5) @ rot.T * side + np.asarray(center)


def _lap_var(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_32F).var())


# --------------------------------------------------------------------------------------------------- masks


def test_combine_masks_modes():
    a = _ellipse((S, S), (60, 64), (40, 50))
    b = _ellipse((S, S), (70, 64), (40, 50)) * 0.8
    hull = _ellipse((S, S), (64, 64), (30, 30))
    np.testing.assert_array_equal(combine_masks("hull", hull=hull, prd=a), hull)
    np.testing.assert_array_equal(combine_masks("learned-prd", prd=a, dst=b), a)
    np.testing.assert_array_equal(combine_masks("learned-dst", prd=a, dst=b), b)
    np.testing.assert_array_equal(combine_masks("learned-prd*learned-dst", prd=a, dst=b), a * b)
    np.testing.assert_array_equal(combine_masks("learned-prd+learned-dst", prd=a, dst=b), np.clip(a + b, 0, 1))
    np.testing.assert_array_equal(combine_masks("stored", stored=b[..., None]), b)  # (H, W, 1) accepted
    np.testing.assert_array_equal(combine_masks("xseg-prd", xseg_prd=a, prd=b), a)
    np.testing.assert_array_equal(combine_masks("xseg-dst", xseg_dst=b, dst=a), b)
    np.testing.assert_array_equal(combine_masks("xseg-prd*xseg-dst", xseg_prd=a, xseg_dst=b), a * b)
    four = combine_masks("learned-prd*learned-dst*xseg-prd*xseg-dst", prd=a, dst=b, xseg_prd=hull, xseg_dst=b)
    np.testing.assert_allclose(four, a * b * hull * b, atol=1e-7)
    out = combine_masks("learned-prd", prd=a)
    assert out.dtype == np.float32 and out is not a
    before = a.copy()
    combine_masks("learned-prd*learned-dst", prd=a, dst=b)
    np.testing.assert_array_equal(a, before)  # inputs are not changed in place
    assert set(MASK_MODES) == {
        "hull",
        "learned-prd",
        "learned-dst",
        "learned-prd*learned-dst",
        "learned-prd+learned-dst",
        "stored",
        "xseg-prd",
        "xseg-dst",
        "xseg-prd*xseg-dst",
        "learned-prd*learned-dst*xseg-prd*xseg-dst",
    }


def test_combine_masks_errors():
    a = np.ones((S, S), np.float32)
    with pytest.raises(ValueError, match="unknown mask mode"):
        combine_masks("xseg", prd=a)
    with pytest.raises(ValueError, match="needs the dst"):
        combine_masks("learned-prd*learned-dst", prd=a)
    with pytest.raises(ValueError, match="needs the hull"):
        combine_masks("hull", prd=a)
    with pytest.raises(ValueError, match="shapes differ"):
        combine_masks("learned-prd+learned-dst", prd=a, dst=np.ones((64, 64), np.float32))


def _dfl_process_mask(mask: np.ndarray, res: int, erode: int, blur: int) -> np.ndarray:
    """The procedure as DFL writes it: full padded canvas, default borders."""
    m = mask.astype(np.float32).copy()
    m[m < 1 / 255] = 0
    size = 4 * res
    if m.shape != (size, size):
        m = np.clip(cv2.resize(m, (size, size), interpolation=cv2.INTER_CUBIC), 0, 1)
        m[m < 1 / 255] = 0
    m = np.pad(m, res)
    if erode > 0:
        m = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (erode, erode)))
    elif erode < 0:
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (-erode, -erode)))
    clip = res + blur // 2
    m[:clip, :] = 0
    m[-clip:, :] = 0
    m[:, :clip] = 0
    m[:, -clip:] = 0
    if blur > 0:
        k = blur + (1 - blur % 2)
        m = cv2.GaussianBlur(m, (k, k), 0)
    return np.clip(m[res:-res, res:-res], 0, 1)


def test_process_mask_shape_and_identity():
    out = process_mask(FACE_MASK, 32)
    assert out.shape == (128, 128) and out.dtype == np.float32
    np.testing.assert_array_equal(out, FACE_MASK)  # already at 4x, nothing asked: unchanged
    out = process_mask(FACE_MASK, 64)
    assert out.shape == (256, 256)
    assert out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError):
        process_mask(FACE_MASK, 32, blur=-1)


def test_process_mask_erode_shrinks_dilate_grows_blur_softens():
    base = process_mask(FACE_MASK, 32)
    eroded = process_mask(FACE_MASK, 32, erode=15)
    dilated = process_mask(FACE_MASK, 32, erode=-15)
    assert eroded.sum() < base.sum() < dilated.sum()
    assert np.all(eroded <= base) and np.all(dilated >= base)
    blurred = process_mask(FACE_MASK, 32, blur=21)
    soft = lambda m: np.count_nonzero((m > 0.02) & (m < 0.98))  # noqa: E731
    assert soft(blurred) > 5 * max(soft(base), 1)
    assert abs(blurred.sum() - base.sum()) < 0.02 * base.sum()  # blur moves mass, keeps it


@pytest.mark.parametrize("blur", [20, 41, 90])
def test_process_mask_blur_never_reaches_the_crop_border(blur):
    out = process_mask(np.ones((S, S), np.float32), 64, erode=-30, blur=blur)
    # the fade ends at the crop edge: only the Gaussian's far tail (< one 8-bit level) reaches the outer ring,
    # and paste drops values < 1/255, so the pasted square never shows its edge
    ring = np.concatenate([out[0], out[-1], out[:, 0], out[:, -1]])
    assert ring.max() < 1 / 255
    assert out[1 + blur // 2 :, 1 + blur // 2 :].max() > 0.4  # yet the fade starts right inside the zeroed band
    assert out[128, 128] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("mask", "res", "erode", "blur"),
    [
        (FACE_MASK, 32, 0, 0),
        (FACE_MASK, 32, 9, 14),
        (FACE_MASK, 32, -40, 25),
        (FACE_MASK, 16, 0, 60),  # input at model res, resized to 64
        (np.ones((S, S), np.float32), 32, 20, 30),  # touches the crop edge: eroded from outside
        (np.ones((S, S), np.float32), 32, -200, 150),  # dilation and blur wider than the padding
        (cv2.GaussianBlur(FACE_MASK, (0, 0), 4), 32, 6, 8),  # soft learned-style mask
    ],
)
def test_process_mask_equals_dfl_padded_canvas(mask, res, erode, blur):
    np.testing.assert_allclose(
        process_mask(mask, res, erode, blur), _dfl_process_mask(mask, res, erode, blur), atol=1e-5
    )


# --------------------------------------------------------------------------------------------------- paste


def test_face_to_frame_matrix_inverts_the_crop():
    lmk = _landmarks()
    fwd = np.vstack([transform_matrix(lmk, S, "whole_face"), [0, 0, 1]])
    back = np.vstack([face_to_frame_matrix(lmk, S, "whole_face"), [0, 0, 1]])
    np.testing.assert_allclose(back @ fwd, np.eye(3), atol=1e-9)
    # positive output face scale shrinks the pasted window (DFL's face_output_mat)
    det = lambda m: abs(np.linalg.det(m[:, :2]))  # noqa: E731
    assert det(face_to_frame_matrix(lmk, S, "wf", 20)) < det(face_to_frame_matrix(lmk, S, "wf"))
    assert det(face_to_frame_matrix(lmk, S, "wf", -20)) > det(face_to_frame_matrix(lmk, S, "wf"))


def test_paste_of_the_frames_own_pixels_is_exact():
    # integer translation: cubic interpolation samples exactly, so the paste must give the frame back
    face = FRAME[200:328, 500:628].astype(np.float32) / 255.0
    mat = np.array([[1.0, 0, 500], [0, 1.0, 200]])
    out = paste(FRAME, face, np.ones((512, 512), np.float32), mat)
    assert out.dtype == np.uint8 and out.shape == FRAME.shape
    assert np.abs(out.astype(int) - FRAME).max() <= 1


def test_paste_round_trip_through_an_aligned_crop():
    lmk = _landmarks()
    to_face = transform_matrix(lmk, 256, "whole_face")
    face = cv2.warpAffine(FRAME, to_face, (256, 256), flags=cv2.INTER_CUBIC).astype(np.float32) / 255.0
    mask = process_mask(np.ones((S, S), np.float32), S // 4, erode=0, blur=0)
    out = paste(FRAME, face, mask, face_to_frame_matrix(lmk, 256, "whole_face"))
    region = warp_mask(mask, face_to_frame_matrix(lmk, 512, "whole_face"), FRAME.shape)
    assert region is not None
    roi, m = region
    inside = m > 0.999
    diff = np.abs(out[roi].astype(int) - FRAME[roi])[inside]
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 3  # up/down-sampling of a smooth frame


def _naive_paste(frame, face, mask, face_to_frame):
    """Full-frame reference: warp everything, blend everywhere."""
    h, w = frame.shape[:2]
    mmat = face_to_frame.copy()
    mmat[:, :2] *= face.shape[0] / mask.shape[0]
    m = np.clip(cv2.warpAffine(mask, mmat, (w, h), flags=cv2.INTER_CUBIC), 0, 1)
    m[m < 1 / 255] = 0
    f = np.clip(
        cv2.warpAffine(face, face_to_frame, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE), 0, 1
    )
    fr = frame.astype(np.float32)
    return np.clip(np.rint(fr + (f * 255 - fr) * m[..., None]), 0, 255).astype(np.uint8)


def _warped_support(mask, face_to_frame, face_size, frame_shape, pad=1):
    """Bounding box (y0, y1, x0, x1, exclusive) of the full-frame warped mask's non-zero pixels, grown by pad."""
    mmat = face_to_frame.copy()
    mmat[:, :2] *= face_size / mask.shape[0]
    m = cv2.warpAffine(mask, mmat, (frame_shape[1], frame_shape[0]), flags=cv2.INTER_CUBIC)
    ys, xs = np.nonzero(np.abs(m) > 0)
    return max(ys.min() - pad, 0), ys.max() + 1 + pad, max(xs.min() - pad, 0), xs.max() + 1 + pad


@pytest.fixture(scope="module")
def swap():
    """A different face (coffee) pasted with a processed learned-style mask into the 720p frame."""
    lmk = _landmarks()
    mask = process_mask(cv2.GaussianBlur(FACE_MASK, (0, 0), 2), S, erode=10, blur=40)  # 512 px
    return lmk, COFFEE, mask, face_to_frame_matrix(lmk, S, "whole_face")


def test_paste_touches_only_the_mask_box_and_matches_full_frame_math(swap):
    _, face, mask, mat = swap
    out = paste(FRAME, face, mask, mat)
    y0, y1, x0, x1 = _warped_support(mask, mat, S, FRAME.shape)
    outside = np.ones(FRAME.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(out[outside], FRAME[outside])  # bit-identical
    assert np.abs(out[y0:y1, x0:x1].astype(int) - FRAME[y0:y1, x0:x1]).mean() > 5  # something was pasted
    assert np.abs(out.astype(int) - _naive_paste(FRAME, face, mask, mat)).max() <= 1


def test_paste_face_partly_outside_the_frame():
    lmk = _landmarks(center=(1270.0, 20.0))
    mat = face_to_frame_matrix(lmk, S, "whole_face")
    mask = np.ones((512, 512), np.float32)
    out = paste(FRAME, COFFEE, mask, mat)
    assert np.abs(out.astype(int) - _naive_paste(FRAME, COFFEE, mask, mat)).max() <= 1
    assert not np.array_equal(out, FRAME)
    off = face_to_frame_matrix(_landmarks(center=(3000.0, 3000.0)), S, "whole_face")
    np.testing.assert_array_equal(paste(FRAME, COFFEE, mask, off), FRAME)


def test_tiny_mask_pastes_nothing():
    mat = face_to_frame_matrix(_landmarks(), S, "whole_face")
    mask = np.zeros((512, 512), np.float32)
    mask[250:253, 250:253] = 1.0  # 3 px at 512 -> 2 frame px (the 512-px crop spans ~340 frame px)
    out = paste(FRAME, COFFEE, mask, mat)
    np.testing.assert_array_equal(out, FRAME)
    np.testing.assert_array_equal(paste(FRAME, COFFEE, np.zeros((512, 512), np.float32), mat), FRAME)


def test_paste_validates_inputs():
    with pytest.raises(ValueError, match="uint8"):
        paste(FRAME.astype(np.float32), COFFEE, FACE_MASK, np.eye(2, 3))
    with pytest.raises(ValueError, match="2x3"):
        paste(FRAME, COFFEE, FACE_MASK, np.eye(2))


def test_paste_changes_only_the_warped_mask_footprint(swap):
    """Tighter than the mask box: inside the box too, every pixel where the frame-space mask is 0 keeps the frame's
    value bit for bit; fully opaque pixels are the face alone; the frame passed in is left as it was."""
    _, face, mask, mat = swap
    before = FRAME.copy()
    out = paste(FRAME, face, mask, mat)
    np.testing.assert_array_equal(FRAME, before)
    placed = warp_mask(mask, mat @ np.diag([S / mask.shape[1], S / mask.shape[0], 1.0]), FRAME.shape)
    assert placed is not None
    roi, m = placed
    footprint = np.zeros(FRAME.shape[:2], bool)
    footprint[roi] = m > 0
    box_only = np.zeros(FRAME.shape[:2], bool)
    box_only[roi] = m == 0
    assert box_only.sum() > 1000  # the box's corners: a stronger claim than the box test above
    np.testing.assert_array_equal(out[~footprint], FRAME[~footprint])
    changed = (out != FRAME).any(-1)
    assert changed[footprint].mean() > 0.9
    opaque = np.zeros(FRAME.shape[:2], bool)
    opaque[roi] = m >= 1.0
    face_in_frame = cv2.warpAffine(
        face, mat, FRAME.shape[1::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    want = np.clip(np.rint(face_in_frame * 255), 0, 255)
    assert opaque.sum() > 1000 and np.abs(out[opaque] - want[opaque]).max() <= 1


def test_seamless_paste_changes_only_the_mask_box(swap):
    _, face, mask, mat = swap
    out = seamless_paste(FRAME, face, mask, mat)
    assert out.dtype == np.uint8 and out.shape == FRAME.shape
    y0, y1, x0, x1 = _warped_support(mask, mat, S, FRAME.shape)
    outside = np.ones(FRAME.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(out[outside], FRAME[outside])
    assert np.abs(out[y0:y1, x0:x1].astype(int) - FRAME[y0:y1, x0:x1]).mean() > 1
    # seamless keeps the frame's colours at the seam better than a plain overlay
    plain = paste(FRAME, face, mask, mat)
    ring = (mask > 0.3) & (mask < 0.9)
    ring_frame = warp_mask(ring.astype(np.float32), mat @ np.diag([S / 512, S / 512, 1.0]), FRAME.shape)
    assert ring_frame is not None
    roi, r = ring_frame
    sel = r > 0.5
    err = lambda img: np.abs(img[roi].astype(int) - FRAME[roi])[sel].mean()  # noqa: E731
    assert err(out) < err(plain)


def test_seamless_paste_at_the_frame_edge_and_tiny():
    mat = face_to_frame_matrix(_landmarks(center=(5.0, 700.0)), S, "whole_face")
    out = seamless_paste(FRAME, COFFEE, np.ones((512, 512), np.float32), mat)
    assert out.shape == FRAME.shape and not np.array_equal(out, FRAME)
    tiny = np.zeros((512, 512), np.float32)
    tiny[250:254, 250:254] = 1
    np.testing.assert_array_equal(seamless_paste(FRAME, COFFEE, tiny, mat), FRAME)


# --------------------------------------------------------------------------------------------------- face effects


def test_hist_match_masked_quantiles_match():
    out = hist_match(ASTRONAUT, COFFEE, FACE_MASK)
    sel = FACE_MASK > 0.5
    qs = np.linspace(0.01, 0.99, 99)
    for c in range(3):
        got, ref = out[..., c][sel], COFFEE[..., c][sel]
        # quantiles within 2/255, allowing 1 % of rank slack where the reference CDF jumps (8-bit gaps)
        lo = np.quantile(ref, np.clip(qs - 0.01, 0, 1)) - 2 / 255
        hi = np.quantile(ref, np.clip(qs + 0.01, 0, 1)) + 2 / 255
        q = np.quantile(got, qs)
        assert np.all((lo <= q) & (q <= hi))
        assert np.abs(np.quantile(got, qs) - np.quantile(ref, qs)).mean() < 2 / 255
    assert out.dtype == np.float32 and out.shape == ASTRONAUT.shape


def test_hist_match_identity_and_threshold():
    np.testing.assert_allclose(hist_match(ASTRONAUT, ASTRONAUT), ASTRONAUT, atol=1e-6)
    full = hist_match(ASTRONAUT, COFFEE, FACE_MASK)
    low = hist_match(ASTRONAUT, COFFEE, FACE_MASK, threshold=200)
    sel = FACE_MASK > 0.5
    assert low[sel].mean() < full[sel].mean()  # DFL's threshold maps onto the lower quantiles
    # threshold t: the image's top quantile lands on the reference's t/255 quantile
    top = np.quantile(COFFEE[..., 0][sel], 200 / 255)
    assert abs(low[..., 0][sel].max() - top) < 3 / 255
    with pytest.raises(ValueError):
        hist_match(ASTRONAUT, COFFEE, threshold=300)
    with pytest.raises(ValueError):
        hist_match(ASTRONAUT, COFFEE, np.ones((10, 10)))


def test_sharpen_modes():
    base = _lap_var(ASTRONAUT)
    for mode in ("box", "gaussian"):
        assert _lap_var(sharpen(ASTRONAUT, mode, 1)) > 1.2 * base
        np.testing.assert_array_equal(sharpen(ASTRONAUT, mode, 0), ASTRONAUT)
        assert _lap_var(sharpen(ASTRONAUT, mode, -10)) < 0.8 * base
    np.testing.assert_array_equal(sharpen(ASTRONAUT, "none", 50), ASTRONAUT)
    # 10 units per median pass, the remainder blended in
    one, half, two = (sharpen(ASTRONAUT, "box", a) for a in (-10, -15, -20))
    passes2 = cv2.medianBlur(cv2.medianBlur(ASTRONAUT, 5), 5)
    np.testing.assert_allclose(two, passes2, atol=1e-6)
    np.testing.assert_allclose(half, 0.5 * one + 0.5 * passes2, atol=1e-5)
    with pytest.raises(ValueError):
        sharpen(ASTRONAUT, "unsharp", 5)


def test_motion_blur_changes_only_masked_pixels():
    out = motion_blur(ASTRONAUT, FACE_MASK, (12.0, 5.0), 100)
    outside = FACE_MASK == 0
    np.testing.assert_array_equal(out[outside], ASTRONAUT[outside])
    assert np.abs(out - ASTRONAUT)[~outside].mean() > 0.01
    np.testing.assert_array_equal(motion_blur(ASTRONAUT, FACE_MASK, (12.0, 5.0), 0), ASTRONAUT)
    np.testing.assert_array_equal(motion_blur(ASTRONAUT, None, (0.5, 0.5), 100), ASTRONAUT)  # k < 1


def test_motion_blur_follows_the_motion_direction():
    stripes_x = np.repeat(((np.arange(S) // 4) % 2).astype(np.float32)[None, :, None], 3, axis=2).repeat(S, 0)
    # horizontal motion smears stripes that vary along x, and leaves the transposed ones alone
    assert np.abs(motion_blur(stripes_x, None, (20.0, 0.0), 100) - stripes_x).mean() > 0.1
    stripes_y = np.ascontiguousarray(stripes_x.transpose(1, 0, 2))
    assert np.abs(motion_blur(stripes_y, None, (20.0, 0.0), 100) - stripes_y).max() < 1e-5
    for d in ((10.0, 10.0), (10.0, -10.0), (-3.0, 12.0)):
        dot = np.zeros((65, 65, 3), np.float32)
        dot[32, 32] = 1.0
        w = motion_blur(dot, None, d, 100)[..., 0]
        ys, xs = np.nonzero(w > 1e-4)
        axis = np.linalg.eigh(np.cov(np.stack([xs, ys]), aweights=w[ys, xs]))[1][:, -1]
        assert abs(axis @ np.asarray(d) / np.linalg.norm(d)) > 0.98


def test_motion_blur_kernel_length_rule():
    dot = np.zeros((129, 129, 3), np.float32)
    dot[64, 64] = 1.0
    spread = lambda d, p: np.count_nonzero(motion_blur(dot, None, d, p)[..., 0].max(axis=0) > 1e-4)  # noqa: E731
    assert spread((30.0, 0.0), 50) == 16  # int(15) + 1
    assert spread((300.0, 0.0), 100) == 50  # capped
    assert spread((1.0, 0.0), 100) == 2  # int(1) + 1


def test_color_match_rct_takes_the_masked_dst_statistics():
    soft = (0.5 * COFFEE + 0.25).astype(np.float32)
    out = color_match(ASTRONAUT, soft, "rct", FACE_MASK, REF_MASK)
    lab = lambda img, m: cv2.cvtColor(img, cv2.COLOR_RGB2LAB)[m > 0.5].mean(0)  # noqa: E731
    assert np.abs(lab(out, FACE_MASK) - lab(soft, REF_MASK)).max() < 0.5
    assert color_match(ASTRONAUT, COFFEE, "sot", FACE_MASK, REF_MASK, rng=1).shape == ASTRONAUT.shape
    with pytest.raises(ValueError):
        color_match(ASTRONAUT, COFFEE, "rct-m", None, None)
