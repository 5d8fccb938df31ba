"""Face-swap metrics on extracted faces: identity, pose, expression, temporal stability, sharpness.

Pure functions on arrays (descriptors, landmarks, crops) so each can be tested on synthetic data; extraction and
the report live in ``facelab.evaluate.report``. Bump ``METRICS_VERSION`` when a definition changes, so that old
reports are not compared with new ones by mistake.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facelab.geometry.pose import head_pose
from facelab.geometry.umeyama import apply_affine, umeyama
from facelab.imaging.sharpness import laplacian_sharpness

# 2: gaze_err in degrees, identity_transfer, fid/kid vs dst, bins; 3: sharpness inside the inner face (the blend
# seam made a blob as "sharp" as a trained swap), and with it identity_transfer's blurred-dst control
METRICS_VERSION = "facelab-evaluate/3"
SAME_PERSON = 0.6  # dlib's own threshold for its 128-D descriptor

# Points that move with the skull, not with expression: nose bridge + nostrils and the four eye corners.
RIGID = np.r_[27:36, 36, 39, 42, 45]
BROWS = np.r_[17:27]
EYES = np.r_[36:48]
MOUTH = np.r_[48:68]
EXPRESSION = np.r_[BROWS, EYES, MOUTH]


def identity_scores(
    swapped: np.ndarray,
    src_mean: np.ndarray,
    dst: np.ndarray,
    src_gallery: np.ndarray | None = None,
    threshold: float = SAME_PERSON,
) -> dict[str, float]:
    """Identity of swapped faces from (N, 128) dlib descriptors.

    ``dst[i]`` is the dst face of the frame that ``swapped[i]`` replaced. ID retrieval: the nearest neighbour of
    each swapped descriptor in the gallery ``src_gallery`` (the src faceset's descriptors; ``[src_mean]`` if None)
    plus all dst descriptors must be a src one.
    """
    swapped = np.atleast_2d(np.asarray(swapped, np.float64))
    dst = np.atleast_2d(np.asarray(dst, np.float64))
    src_mean = np.asarray(src_mean, np.float64)
    gallery_src = np.atleast_2d(np.asarray(src_gallery, np.float64)) if src_gallery is not None else src_mean[None]
    to_src = np.linalg.norm(swapped - src_mean, axis=1)
    to_dst = np.linalg.norm(swapped - dst, axis=1)
    # Nearest src vs nearest dst in the gallery; ties count as failures (a swap must read as src).
    near_src = np.linalg.norm(swapped[:, None] - gallery_src[None], axis=2).min(1)
    near_dst = np.linalg.norm(swapped[:, None] - dst[None], axis=2).min(1)
    return {
        "dist_src_mean": float(to_src.mean()),
        "dist_src_median": float(np.median(to_src)),
        "dist_dst_mean": float(to_dst.mean()),
        "dist_dst_median": float(np.median(to_dst)),
        "frac_src": float((to_src < threshold).mean()),
        "id_retrieval": float((near_src < near_dst).mean()),
        "n": float(len(swapped)),
    }


def _angle_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs((a - b + 180.0) % 360.0 - 180.0)  # wrap so 179 vs -179 is 2 degrees, not 358


def head_poses(landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, 3) yaw, pitch, roll in degrees of (N, 68, 2) landmarks in images of (width, height)."""
    return np.array([head_pose(lm, size) for lm in np.asarray(landmarks)], np.float64).reshape(-1, 3)


def pose_error(swapped_lm: np.ndarray, dst_lm: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, 3) per-frame |yaw|, |pitch|, |roll| differences in degrees between swapped and dst faces."""
    return _angle_diff(head_poses(swapped_lm, size), head_poses(dst_lm, size))


def eye_distance(lm: np.ndarray) -> np.ndarray:
    """Outer-eye-corner distance (36-45) of (68, 2) or (N, 68, 2) landmarks: the face's scale unit."""
    lm = np.asarray(lm, np.float64)
    return np.linalg.norm(lm[..., 45, :] - lm[..., 36, :], axis=-1)


def expression_error(swapped_lm: np.ndarray, dst_lm: np.ndarray, indices: np.ndarray = EXPRESSION) -> np.ndarray:
    """(N,) per-frame mean distance between the brow, eye and mouth points of swapped and dst faces after mapping
    the swapped face onto the dst by a similarity fitted on rigid points (removes pose and scale), in units of
    the dst's outer-eye distance."""
    s = np.asarray(swapped_lm, np.float64).reshape(-1, 68, 2)
    d = np.asarray(dst_lm, np.float64).reshape(-1, 68, 2)
    out = np.empty(len(s))
    for i, (a, b) in enumerate(zip(s, d)):
        m = umeyama(a[RIGID], b[RIGID])
        moved = apply_affine(m, a[indices])
        out[i] = np.linalg.norm(moved - b[indices], axis=1).mean() / max(eye_distance(b), 1e-6)
    return out


def _mean_abs_change(crops: np.ndarray, mask: np.ndarray | None) -> float:
    c = np.asarray(crops, np.float32)
    diff = np.abs(np.diff(c, axis=0))
    if diff.ndim == 4:
        diff = diff.mean(-1)
    if mask is not None:
        diff = diff[:, np.asarray(mask, bool)]
    return float(diff.mean())


def flicker_ratio(swapped_crops: np.ndarray, dst_crops: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute frame-to-frame change of the swap's face region over the same for the dst (1.0 = as stable
    as the real video; > 1 = the swap flickers). Crops are (T, H, W[, 3]) of one region (e.g. the dst's aligned
    face box) in consecutive frames; ``mask`` (H, W) limits it to the face."""
    if len(swapped_crops) < 2 or len(dst_crops) < 2:
        return float("nan")
    real = _mean_abs_change(dst_crops, mask)
    fake = _mean_abs_change(swapped_crops, mask)
    if real == 0.0:
        return 1.0 if fake == 0.0 else float("inf")
    return fake / real


def landmark_jitter(lms: np.ndarray) -> float:
    """Mean |second difference| of (T, 68, 2) landmarks over consecutive frames, per point, normalised by the mean
    outer-eye distance. Smooth motion (constant velocity) scores 0; shaking points score high."""
    lm = np.asarray(lms, np.float64)
    if len(lm) < 3:
        return float("nan")
    acc = lm[2:] - 2 * lm[1:-1] + lm[:-2]
    return float(np.linalg.norm(acc, axis=-1).mean() / max(float(eye_distance(lm).mean()), 1e-6))


def sharpness(crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray]) -> np.ndarray:
    """(N,) variance of the Laplacian inside the inner face (brows to mouth, the jaw line and the swap's blend
    seam left out) of aligned crops (landmarks in crop px), at 256 px."""
    return np.array([laplacian_sharpness(c, lm, region="inner") for c, lm in zip(crops, landmarks)], np.float64)


def sharpness_ratio(swapped: np.ndarray, src: np.ndarray) -> float:
    """Mean face-region sharpness (``sharpness``) of the swapped faces over that of the src faces (< 1 = blurrier
    than src); NaN when the src faces have no texture at all."""
    s = float(np.mean(src))
    return float(np.mean(swapped)) / s if s > 0 else float("nan")


# FaceMesh (refine_landmarks) indices: iris centres and the eye corners / lids around them, per eye.
# (iris, corner a, corner b, upper lid, lower lid); the "right" eye is the subject's right (image left).
_GAZE_EYES = ((468, 33, 133, 159, 145), (473, 362, 263, 386, 374))
MESH_IRIS_POINTS = 478


def gaze_offsets(mesh: np.ndarray) -> np.ndarray:
    """(2 eyes, 2) iris centre relative to the eye: along the corner-to-corner axis and across it, both in units
    of the eye width and 0 at the corners' midpoint. ``mesh`` is a FaceMesh mesh with iris points (478, >= 2)."""
    p = np.asarray(mesh, np.float64)[:, :2]
    out = np.empty((2, 2))
    for k, (iris, a, b, _, _) in enumerate(_GAZE_EYES):
        axis = p[b] - p[a]
        width2 = max(float(axis @ axis), 1e-12)
        rel = p[iris] - (p[a] + p[b]) / 2
        out[k] = (rel @ axis / width2, rel @ np.array([-axis[1], axis[0]]) / width2)
    return out


def gaze_error(swapped_meshes: Sequence[np.ndarray], dst_meshes: Sequence[np.ndarray]) -> np.ndarray:
    """(N,) per-frame mean over both eyes of the distance between swapped and dst iris offsets (eye widths):
    0 when the swapped eyes look where the dst's do; DFL-style "always straight ahead" eyes score high."""
    return np.array(
        [np.linalg.norm(gaze_offsets(s) - gaze_offsets(d), axis=1).mean() for s, d in zip(swapped_meshes, dst_meshes)]
    )


# Anatomical averages turning an iris offset into an eyeball rotation: corner-to-corner eye width ~30 mm,
# eyeball radius ~12 mm (adult); an offset of w eye widths is a rotation of asin(w * 30 / 12).
EYE_WIDTH_MM, EYEBALL_RADIUS_MM = 30.0, 12.0


def gaze_angles(mesh: np.ndarray) -> np.ndarray:
    """(2 eyes, 2) gaze in degrees (along and across the eye axis; 0, 0 = looking where the head points) from the
    iris offsets of ``gaze_offsets``."""
    s = np.clip(gaze_offsets(mesh) * EYE_WIDTH_MM / EYEBALL_RADIUS_MM, -1.0, 1.0)
    return np.degrees(np.arcsin(s))


def gaze_angle_error(swapped_meshes: Sequence[np.ndarray], dst_meshes: Sequence[np.ndarray]) -> np.ndarray:
    """(N,) per-frame mean over both eyes of the angle (degrees) between the swapped and the dst gaze."""
    return np.array(
        [np.linalg.norm(gaze_angles(s) - gaze_angles(d), axis=1).mean() for s, d in zip(swapped_meshes, dst_meshes)]
    )


def identity_transfer(swap: float, best: float, none: float) -> float:
    """How far a swap's identity distance to the src moved from a no-transfer control towards the best possible:
    ``(none - swap) / (none - best)``; 1 = as close to the src as the src's own held-apart frames, 0 = no closer
    than the no-transfer control ``none`` (the report's: the dst's faces blurred to the swap's sharpness). NaN when
    the controls coincide."""
    span = none - best
    return float((none - swap) / span) if abs(span) > 1e-9 else float("nan")


# Reported bins of the dst face: head turn (|yaw|, degrees) and expression.
YAW_BINS = ((0.0, 15.0), (15.0, 30.0), (30.0, 90.0))
OPEN_MOUTH = 0.15  # mouth aspect ratio (inner lips) above which a mouth is open (faceset coverage's "open")
SMILING = 0.03  # coverage's smile feature above which a face smiles ("slight" and up)


def yaw_bin(yaw: float) -> str:
    """``yaw:<lo>..<hi>`` of |yaw| (degrees)."""
    a = abs(float(yaw))
    lo, hi = next((b for b in YAW_BINS if b[0] <= a < b[1]), YAW_BINS[-1])
    return f"yaw:{lo:g}..{hi:g}"


def follow_correlation(swapped: np.ndarray, dst: np.ndarray) -> float:
    """Pearson correlation over frames of a per-frame measure (eye or mouth aspect ratio) of swapped and dst faces:
    1 = the swap blinks and speaks when the dst does. NaN when either side never changes or fewer than 3 frames."""
    s, d = np.asarray(swapped, np.float64), np.asarray(dst, np.float64)
    ok = np.isfinite(s) & np.isfinite(d)
    s, d = s[ok], d[ok]
    if len(s) < 3 or s.std() < 1e-12 or d.std() < 1e-12:
        return float("nan")
    return float(np.corrcoef(s, d)[0, 1])


def mean_pairwise_distance(vectors: np.ndarray) -> float:
    """Mean Euclidean distance over all unordered pairs of the rows of ``vectors`` (N, D); nan for N < 2.

    On dlib descriptors of a generator's samples it is their diversity: 0 when every sample is the same face, and
    about what the real faceset's own faces give when the samples vary like them (one person's faces sit well under
    ``SAME_PERSON`` from each other). A GAN that collapses drives it down."""
    v = np.asarray(vectors, np.float64)
    n = len(v)
    if n < 2:
        return float("nan")
    sq = np.square(v).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * v @ v.T, 0.0)  # (N, N) squared distances
    iu = np.triu_indices(n, 1)
    return float(np.sqrt(d2[iu]).mean())
