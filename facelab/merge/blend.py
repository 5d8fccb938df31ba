"""Merge-time mask handling and compositing: put a predicted face back into its frame.

Conventions: face crops are float32 RGB in [0, 1], (H, W, 3); frames are uint8 RGB (H, W, 3); masks are float32
(H, W) in [0, 1]. A ``face_to_frame`` matrix is a 2x3 affine mapping face-crop pixels to frame pixels (the inverse
of the aligned-crop transform); a mask of another size covering the same square is mapped by scaling it.

Pasting only touches the bounding box of the warped mask: a small face in a 720p frame costs a few hundred
thousand pixels of float math, not the whole frame, and every pixel outside that box is the input frame, bit for bit.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from facelab.geometry.facetype import FaceType, transform_matrix
from facelab.geometry.umeyama import apply_affine, invert_affine
from facelab.imaging.color import transfer
from facelab.imaging.warp import motion_kernel

MASK_MODES: tuple[str, ...] = (
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
)
SHARPEN_MODES: tuple[str, ...] = ("none", "box", "gaussian")

Roi = tuple[slice, slice]

_MIN_VALUE = 1.0 / 255.0  # mask values below one 8-bit level count as empty (DFL)
_MIN_PASTE_SIDE = 4  # DFL pastes nothing when the >= 0.1 part of the mask spans fewer pixels than this
_SRC_REACH = 4  # source pixels an interpolation tap reaches beyond the mask support (lanczos4 = 4; cubic = 2)

# mode -> the keyword arguments it reads
_MODE_INPUTS: dict[str, tuple[str, ...]] = {
    "hull": ("hull",),
    "learned-prd": ("prd",),
    "learned-dst": ("dst",),
    "learned-prd*learned-dst": ("prd", "dst"),
    "learned-prd+learned-dst": ("prd", "dst"),
    "stored": ("stored",),
    "xseg-prd": ("xseg_prd",),
    "xseg-dst": ("xseg_dst",),
    "xseg-prd*xseg-dst": ("xseg_prd", "xseg_dst"),
    "learned-prd*learned-dst*xseg-prd*xseg-dst": ("prd", "dst", "xseg_prd", "xseg_dst"),
}


def _as_mask(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    m = np.asarray(mask, dtype=np.float32)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.ndim != 2:
        raise ValueError(f"{name} must be (H, W) or (H, W, 1), got shape {np.shape(mask)}")
    return m


def _as_face(image: np.ndarray, name: str = "face") -> np.ndarray:
    a = np.asarray(image, dtype=np.float32)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"{name} must be (H, W, 3) RGB, got shape {np.shape(image)}")
    return a


def _as_frame(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(
            f"frame must be a uint8 (H, W, 3) RGB array, got {getattr(frame, 'dtype', type(frame))} {np.shape(frame)}"
        )
    return frame


def _bbox(selection: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1), inclusive, of the True pixels; None when there are none."""
    rows = np.flatnonzero(selection.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(selection.any(axis=0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


# --------------------------------------------------------------------------------------------------- masks


def combine_masks(
    mode: str,
    *,
    hull: np.ndarray | None = None,
    prd: np.ndarray | None = None,
    dst: np.ndarray | None = None,
    stored: np.ndarray | None = None,
    xseg_prd: np.ndarray | None = None,
    xseg_dst: np.ndarray | None = None,
) -> np.ndarray:
    """The merge mask for ``mode`` (one of ``MASK_MODES``) as a new float32 (H, W) array in [0, 1].

    ``hull``: landmark hull of the destination face; ``prd`` / ``dst``: the model's learned masks for the predicted
    and the destination face; ``stored``: the dst face's stored polygons; ``xseg_prd``: the mask model's prediction
    on the swapped face; ``xseg_dst``: the dst face's stored mask model output (``facelab mask apply``). Products
    (``*``) intersect, the sum (``+``) is clipped (a union that keeps soft edges); single modes pass the mask through.
    """
    if mode not in _MODE_INPUTS:
        raise ValueError(f"unknown mask mode {mode!r}; expected one of {', '.join(MASK_MODES)}")
    given = {"hull": hull, "prd": prd, "dst": dst, "stored": stored, "xseg_prd": xseg_prd, "xseg_dst": xseg_dst}
    missing = [k for k in _MODE_INPUTS[mode] if given[k] is None]
    if missing:
        raise ValueError(f"mask mode {mode!r} needs the {' and '.join(missing)} mask(s); got None")
    masks = [_as_mask(given[k], k) for k in _MODE_INPUTS[mode]]
    if any(m.shape != masks[0].shape for m in masks[1:]):
        raise ValueError(f"mask mode {mode!r}: shapes differ ({', '.join(str(m.shape) for m in masks)})")
    out = masks[0].copy()
    for m in masks[1:]:
        if "+" in mode:
            out += m
        else:
            out *= m
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def process_mask(mask: np.ndarray, model_res: int, erode: int = 0, blur: int = 0) -> np.ndarray:
    """DFL's merge mask processing; returns a float32 (4*model_res, 4*model_res) mask in [0, 1].

    ``erode`` and ``blur`` are in pixels **at 4x the model resolution** (a 128-px model works on a 512-px mask, so
    erode=20 there shrinks the mask by ~10 face-crop px at 512 / 2.5 px at 128): ``erode`` > 0 erodes with an
    elliptical |erode| x |erode| kernel, < 0 dilates; ``blur`` is a Gaussian kernel size (made odd, sigma from
    OpenCV's rule). Everything within ``blur // 2`` of the crop edge is zeroed first, so the fade ends inside the
    crop and the pasted square never shows an edge.

    DFL does this on a canvas padded by ``model_res`` per side; here only the window the mask can reach is
    processed, with zeros outside, which gives the same numbers for a fraction of the pixels.
    """
    if model_res < 1:
        raise ValueError(f"model_res must be >= 1, got {model_res}")
    if blur < 0:
        raise ValueError(f"blur must be >= 0, got {blur}")
    size = 4 * model_res
    m = _as_mask(mask)
    m = np.where(m < _MIN_VALUE, 0.0, m).astype(np.float32)
    if m.shape != (size, size):
        m = cv2.resize(m, (size, size), interpolation=cv2.INTER_CUBIC)
        m = np.clip(m, 0.0, 1.0)  # cubic over/undershoot at the mask edge
        m[m < _MIN_VALUE] = 0.0
    out = np.zeros((size, size), dtype=np.float32)
    half_blur = blur // 2
    # DFL zeroes within model_res + blur//2 of the padded border = within blur//2 of the crop edge
    lo, hi = half_blur, size - half_blur
    box = _bbox(m > 0)
    if box is None or hi <= lo:
        return out
    grow = (-erode) // 2 + 1 if erode < 0 else 0  # a dilation spreads the support by half its kernel
    reach = grow + half_blur + 1
    y0, y1 = max(box[0] - reach, 0), min(box[1] + 1 + reach, size)
    x0, x1 = max(box[2] - reach, 0), min(box[3] + 1 + reach, size)
    win = m[y0:y1, x0:x1].copy()
    if erode != 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (abs(erode), abs(erode)))
        op = cv2.erode if erode > 0 else cv2.dilate
        # outside the window is zero (DFL's padding, or empty mask): erosion must eat into the mask from there
        win = op(win, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    win[: max(lo - y0, 0)] = 0.0
    win[max(hi - y0, 0) :] = 0.0
    win[:, : max(lo - x0, 0)] = 0.0
    win[:, max(hi - x0, 0) :] = 0.0
    if blur > 0:
        k = blur | 1  # DFL makes an even kernel odd by adding one
        win = cv2.GaussianBlur(win, (k, k), 0, borderType=cv2.BORDER_CONSTANT)
    out[y0:y1, x0:x1] = win
    return np.clip(out, 0.0, 1.0)


# --------------------------------------------------------------------------------------------------- paste


def face_to_frame_matrix(
    landmarks68: np.ndarray, face_size: int, face_type: FaceType | str, output_face_scale: float = 0.0
) -> np.ndarray:
    """2x3 matrix mapping a ``face_size`` crop of ``face_type`` back to frame pixels.

    ``output_face_scale`` (DFL: -50..50) > 0 shrinks the pasted face, < 0 enlarges it (DFL's face_output_mat).
    """
    return invert_affine(transform_matrix(landmarks68, face_size, face_type, 1.0 + 0.01 * output_face_scale))


def _rescale(face_to_frame: np.ndarray, face_shape: tuple[int, ...], image_shape: tuple[int, ...]) -> np.ndarray:
    """The matrix for an image covering the same square as the face but with ``image_shape`` pixels."""
    mat = np.asarray(face_to_frame, dtype=np.float64)[:2].copy()
    if mat.shape != (2, 3):
        raise ValueError(f"face_to_frame must be a 2x3 affine matrix, got shape {np.shape(face_to_frame)}")
    mat[:, 0] *= face_shape[1] / image_shape[1]
    mat[:, 1] *= face_shape[0] / image_shape[0]
    return mat


def _shifted(mat: np.ndarray, roi: Roi) -> np.ndarray:
    """``mat`` followed by a translation into the roi's own coordinates."""
    out = mat.copy()
    out[0, 2] -= roi[1].start
    out[1, 2] -= roi[0].start
    return out


def _roi_size(roi: Roi) -> tuple[int, int]:
    return roi[1].stop - roi[1].start, roi[0].stop - roi[0].start


def warp_mask(
    mask: np.ndarray,
    mask_to_frame: np.ndarray,
    frame_shape: tuple[int, ...],
    interpolation: int = cv2.INTER_CUBIC,
) -> tuple[Roi, np.ndarray] | None:
    """The mask in frame space, computed only where it can be non-zero.

    Returns ``(roi, values)``: ``frame[roi]``-shaped float32 values in [0, 1] (zero border, values < 1/255 -> 0) and
    zero everywhere else in the frame; None when the mask misses the frame. The roi is the bounding box of the
    non-zero values.
    """
    m = _as_mask(mask)
    m = np.where(m < _MIN_VALUE, 0.0, m).astype(np.float32)
    box = _bbox(m > 0)
    if box is None:
        return None
    mat = np.asarray(mask_to_frame, dtype=np.float64)[:2]
    # the source rectangle interpolation taps can reach, mapped to the frame, bounds the warped support
    y0, y1, x0, x1 = box[0] - _SRC_REACH, box[1] + _SRC_REACH, box[2] - _SRC_REACH, box[3] + _SRC_REACH
    pts = apply_affine(mat, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64))
    h, w = frame_shape[:2]
    fx0, fx1 = max(math.floor(pts[:, 0].min()) - 1, 0), min(math.ceil(pts[:, 0].max()) + 2, w)
    fy0, fy1 = max(math.floor(pts[:, 1].min()) - 1, 0), min(math.ceil(pts[:, 1].max()) + 2, h)
    if fx1 <= fx0 or fy1 <= fy0:
        return None
    roi = (slice(fy0, fy1), slice(fx0, fx1))
    warped = cv2.warpAffine(
        m, _shifted(mat, roi), _roi_size(roi), flags=interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    np.clip(warped, 0.0, 1.0, out=warped)
    warped[warped < _MIN_VALUE] = 0.0
    tight = _bbox(warped > 0)
    if tight is None:
        return None
    # a rotated square's corners overestimate its support: keep only the box that really holds mask
    sub = (slice(tight[0], tight[1] + 1), slice(tight[2], tight[3] + 1))
    roi = (slice(fy0 + tight[0], fy0 + tight[1] + 1), slice(fx0 + tight[2], fx0 + tight[3] + 1))
    return roi, warped[sub]


def _place(
    frame_shape: tuple[int, ...],
    face: np.ndarray,
    mask: np.ndarray,
    face_to_frame: np.ndarray,
    interpolation: int,
    pad: int = 0,
) -> tuple[Roi, np.ndarray, np.ndarray] | None:
    """(roi, frame-space mask, frame-space face) over the mask's bounding box grown by ``pad`` (clipped to the
    frame), or None when DFL would paste nothing."""
    face = _as_face(face)
    mask = _as_mask(mask)
    warped = warp_mask(mask, _rescale(face_to_frame, face.shape, mask.shape), frame_shape, interpolation)
    if warped is None:
        return None
    roi, m = warped
    box = _bbox(m >= 0.1)
    if box is None or min(box[1] - box[0], box[3] - box[2]) < _MIN_PASTE_SIDE:
        return None
    if pad:
        h, w = frame_shape[:2]
        y0, y1 = max(roi[0].start - pad, 0), min(roi[0].stop + pad, h)
        x0, x1 = max(roi[1].start - pad, 0), min(roi[1].stop + pad, w)
        m = np.pad(m, ((roi[0].start - y0, y1 - roi[0].stop), (roi[1].start - x0, x1 - roi[1].stop)))
        roi = (slice(y0, y1), slice(x0, x1))
    mat = _rescale(face_to_frame, face.shape, face.shape)
    # replicate, not zero: the face's edge pixels, not black, sit under the mask's soft fade
    face_roi = cv2.warpAffine(
        face, _shifted(mat, roi), _roi_size(roi), flags=interpolation, borderMode=cv2.BORDER_REPLICATE
    )
    np.clip(face_roi, 0.0, 1.0, out=face_roi)
    return roi, m, face_roi


def _blend(frame_roi: np.ndarray, face_roi: np.ndarray, mask_roi: np.ndarray) -> np.ndarray:
    """frame*(1-M) + face*M in 8-bit units; exactly the frame where M == 0."""
    f = frame_roi.astype(np.float32)
    out = face_roi * np.float32(255.0)
    out -= f
    out *= mask_roi[..., None]
    out += f  # + 0 where the mask is 0: the frame's own integer values come back
    np.rint(out, out=out)
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def _poisson_clone(frame_roi: np.ndarray, face_roi: np.ndarray, mask_roi: np.ndarray) -> np.ndarray:
    """The face Poisson-cloned (OpenCV NORMAL_CLONE) into ``frame_roi`` over the mask binarised at > 0.1, as float32
    [0, 1] on the 8-bit grid (the clone works in uint8)."""
    binary = np.where(mask_roi > 0.1, 255, 0).astype(np.uint8)
    # OpenCV zeroes the clone mask's 1-px frame before taking its bounding box; doing it here keeps our centre
    # consistent with that box, so the clone lands exactly where it came from
    binary[[0, -1], :] = 0
    binary[:, [0, -1]] = 0
    box = _bbox(binary > 0)
    src = np.clip(np.rint(face_roi * 255.0), 0, 255).astype(np.uint8)
    if box is not None:
        y0, y1, x0, x1 = box
        center = (x0 + (x1 - x0 + 1) // 2, y0 + (y1 - y0 + 1) // 2)
        src = cv2.seamlessClone(src, np.ascontiguousarray(frame_roi), binary, center, cv2.NORMAL_CLONE)
    return src.astype(np.float32) / 255.0


def paste(
    frame: np.ndarray,
    face: np.ndarray,
    mask: np.ndarray,
    face_to_frame: np.ndarray,
    interpolation: int = cv2.INTER_CUBIC,
    seamless: bool = False,
) -> np.ndarray:
    """Overlay ``face`` on a copy of ``frame`` through ``mask``: out = frame*(1-M) + face*M (DFL's overlay mode).

    ``face`` (float32 [0, 1], any size) and ``mask`` (any size, e.g. process_mask's 4x output) cover the same
    square; ``face_to_frame`` maps face pixels to frame pixels (see ``face_to_frame_matrix``). Returns uint8.
    Only the bounding box of the warped mask is computed; nothing is pasted when the mask's >= 0.1 part spans
    fewer than 4 px per side.

    ``seamless`` is DFL's seamless mode: Poisson-clone the face (OpenCV NORMAL_CLONE) over the mask binarised at
    > 0.1 first, then soft-paste the cloned pixels through the mask.
    """
    frame = _as_frame(frame)
    out = frame.copy()
    # seamless: 2 px of frame around the mask, the Poisson boundary (and OpenCV clears the clone mask's outer pixel)
    placed = _place(frame.shape, face, mask, face_to_frame, interpolation, pad=2 if seamless else 0)
    if placed is None:
        return out
    roi, m, face_roi = placed
    if seamless:
        face_roi = _poisson_clone(frame[roi], face_roi, m)
    out[roi] = _blend(frame[roi], face_roi, m)
    return out


# DFL's seamless mode (merge blend "seamless"); same arguments and ROI limit as ``paste``
seamless_paste = functools.partial(paste, seamless=True)


# --------------------------------------------------------------------------------------------------- face effects


def hist_match(
    image: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None, threshold: int = 255
) -> np.ndarray:
    """Per-channel histogram matching of ``image`` to ``reference`` (DFL's hist-match mode).

    Each channel value goes to its quantile among the image's pixels, then to the reference value at that
    quantile times ``threshold``/255 (DFL's threshold, 0..255: below 255 the image is mapped onto the darker part of
    the reference's range). With ``mask`` (same H x W as both images), both distributions use only pixels where
    mask > 0.5, and the mapping is applied to every pixel (the caller blends). DFL instead fills the outside with
    white (and then clamps the wrong array); here the outside simply does not count. Quantiles are mid-rank, so
    an image matched to itself is unchanged. Returns float32 in [0, 1].
    """
    img = _as_face(image, "image")
    ref = _as_face(reference, "reference")
    if not 0 <= threshold <= 255:
        raise ValueError(f"threshold must be in 0..255, got {threshold}")
    x = img.reshape(-1, 3)
    r = ref.reshape(-1, 3)
    if mask is not None:
        m = _as_mask(mask)
        if m.shape != img.shape[:2] or m.shape != ref.shape[:2]:
            raise ValueError(f"mask {m.shape} must match image {img.shape[:2]} and reference {ref.shape[:2]}")
        sel = (m > 0.5).ravel()
        xs, r = x[sel], r[sel]
    else:
        xs = x
    if len(xs) < 2 or len(r) < 2:
        return np.clip(img, 0.0, 1.0)
    frac = threshold / 255.0
    out = np.empty_like(x)
    for c in range(3):
        sv, sc = np.unique(xs[:, c], return_counts=True)
        rv, rc = np.unique(r[:, c], return_counts=True)
        sq = (np.cumsum(sc) - 0.5 * sc) / len(xs)  # mid-rank quantile of each distinct value
        rq = (np.cumsum(rc) - 0.5 * rc) / len(r)
        out[:, c] = np.interp(np.interp(x[:, c], sv, sq) * frac, rq, rv)
    return np.clip(out.reshape(img.shape), 0.0, 1.0)


def sharpen(image: np.ndarray, mode: str, amount: int, kernel: int = 3) -> np.ndarray:
    """DFL's blur/sharpen of the face (``mode`` one of ``SHARPEN_MODES``; ``kernel`` made odd).

    ``amount`` is DFL's unit (-100..100), not a percentage: > 0 ``box`` filters with delta + (delta - box)*amount,
    ``gaussian`` gives (1 + amount/2)*img - (amount/2)*blur, so amount 1 is already a full unsharp mask; < 0 blurs
    with 5x5 median passes, 10 units per full pass (-15 = one pass, then half of a second one blended in);
    0 or mode "none" returns a copy. Returns float32 clipped to [0, 1].
    """
    if mode not in SHARPEN_MODES:
        raise ValueError(f"unknown sharpen mode {mode!r}; expected one of {', '.join(SHARPEN_MODES)}")
    img = _as_face(image, "image").copy()
    if mode == "none" or amount == 0:
        return np.clip(img, 0.0, 1.0)
    k = kernel | 1
    if amount > 0:
        if mode == "box":
            delta = np.zeros((k, k), dtype=np.float32)
            delta[k // 2, k // 2] = 1.0
            img = cv2.filter2D(img, -1, delta + (delta - np.full((k, k), 1.0 / (k * k), np.float32)) * amount)
        else:
            blurred = cv2.GaussianBlur(img, (k, k), 0)
            img = cv2.addWeighted(img, 1.0 + 0.5 * amount, blurred, -0.5 * amount, 0.0)
    else:
        n = -amount
        while n > 0:
            passed = cv2.medianBlur(img, 5)
            weight = 1.0 if n >= 10 else (n % 10) / 10.0
            img = passed if weight == 1.0 else img * (1.0 - weight) + passed * weight
            n -= 10
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def motion_blur(
    image: np.ndarray, mask: np.ndarray | None, displacement_px: tuple[float, float], power: int
) -> np.ndarray:
    """DFL's merge motion blur: a line kernel along ``displacement_px`` = (dx, dy), the face's movement in frame
    pixels between the previous and next frame; ``power`` 0..100 (%) scales its length: k = int(|d|*power/100),
    nothing if k < 1, else a kernel of clip(k + 1, 2, 50) px. Applied through ``mask`` (soft blend; None = whole
    image): pixels where mask == 0 are returned unchanged. Returns float32.
    """
    img = _as_face(image, "image")
    dx, dy = float(displacement_px[0]), float(displacement_px[1])
    k = int(math.hypot(dx, dy) * power / 100.0)
    if k < 1:
        return img.copy()
    size = int(np.clip(k + 1, 2, 50))
    # motion_kernel rotates a horizontal line counter-clockwise on screen (y down): -atan2 points it along (dx, dy)
    blurred = cv2.filter2D(img, -1, motion_kernel(size, -math.degrees(math.atan2(dy, dx))))
    if mask is None:
        return blurred
    m = _as_mask(mask)
    if m.shape != img.shape[:2]:
        raise ValueError(f"mask {m.shape} does not match image {img.shape[:2]}")
    return (img + (blurred - img) * m[..., None]).astype(np.float32)


def color_match(
    face: np.ndarray,
    dst_crop: np.ndarray,
    mode: str,
    face_mask: np.ndarray | None,
    dst_mask: np.ndarray | None,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Recolor the predicted ``face`` to the destination crop's statistics before pasting (``mode`` from
    ``facelab.imaging.color.CT_MODES``). With masks, statistics come only from masked pixels, which is what DFL's
    "-m" variants aim for (theirs also count the zeroed outside)."""
    return transfer(mode, face, dst_crop, face_mask, dst_mask, rng=rng)
