"""Merge's xseg masks (DFL's XSeg merge modes), both as float32 (res, res) masks in [0, 1] in the model's crop:

- **xseg-dst**: the dst faceset face's stored mask (``FaceMeta.xseg_mask`` from ``facelab mask apply``). It covers
  that face's aligned square, of the faceset's face type and size (e.g. whole_face 512, stored at <= 256 px), so it
  is mapped mask px -> aligned px -> frame (``FaceMeta.inverse``) -> model crop, as merge maps stored polygons.
- **xseg-prd**: the mask model run on the swapped face. The network was trained on 256 px whole-face crops of
  real frames, so it sees the dst frame's whole-face crop with the swapped face pasted over the part the model's
  crop covers (hair and background around it stay real), and its mask is mapped back to the model's crop.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from facelab.faceset.meta import decode_xseg_mask
from facelab.geometry.facetype import FaceType, transform_matrix
from facelab.geometry.umeyama import apply_affine, invert_affine
from facelab.imaging.masks import hull_mask
from facelab.models.xseg import RESOLUTION, MaskModel

XSEG_FACE_TYPE = FaceType.WHOLE_FACE  # the mask network's input crop (MaskModel.face_type)


def mode_parts(mode: str) -> set[str]:
    """The masks a mask mode combines: ``"learned-prd*xseg-dst"`` -> {"learned-prd", "xseg-dst"}."""
    return set(mode.replace("+", "*").split("*"))


def uses_xseg_dst(mode: str) -> bool:
    return "xseg-dst" in mode_parts(mode)


def uses_xseg_prd(mode: str) -> bool:
    return "xseg-prd" in mode_parts(mode)


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 affine ``outer(inner(p))``."""
    o, i = np.asarray(outer, np.float64), np.asarray(inner, np.float64)
    return np.hstack([o[:, :2] @ i[:, :2], o[:, :2] @ i[:, 2:] + o[:, 2:]])


def aligned_to_crop(aligned_to_source: np.ndarray, landmarks: np.ndarray, res: int, face_type: FaceType) -> np.ndarray:
    """2x3: a faceset face's aligned px -> the model's ``res`` crop of ``face_type`` (through the frame, so the
    faceset may use another face type and size than the model)."""
    return compose(transform_matrix(landmarks, res, face_type), aligned_to_source)


def stored_xseg(
    text: str, aligned_size: int, aligned_to_source: np.ndarray, landmarks: np.ndarray, res: int, face_type: FaceType
) -> np.ndarray:
    """xseg-dst: a stored ``FaceMeta.xseg_mask`` (``text``) of an ``aligned_size`` face, in the model's crop.
    FacesetError if ``text`` is not a mask."""
    mask = decode_xseg_mask(text).astype(np.float32) / 255.0
    k = aligned_size / mask.shape[0]  # the stored PNG is the aligned square at <= 256 px: pixel centres scale
    to_aligned = np.array([[k, 0.0, 0.5 * k - 0.5], [0.0, k, 0.5 * k - 0.5]])
    m = compose(aligned_to_crop(aligned_to_source, landmarks, res, face_type), to_aligned)
    out = cv2.warpAffine(mask, m, (res, res), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return np.clip(out, 0.0, 1.0)


def crop_to_xseg(landmarks: np.ndarray, res: int, face_type: FaceType) -> np.ndarray:
    """2x3: the model's ``res`` crop px -> the mask network's 256 px whole-face crop px."""
    crop_to_frame = invert_affine(transform_matrix(landmarks, res, face_type))
    return compose(transform_matrix(landmarks, RESOLUTION, XSEG_FACE_TYPE), crop_to_frame)


def xseg_context(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The dst frame's 256 px whole-face crop, float32 RGB in [0, 1]: what surrounds the swapped face in xseg-prd."""
    m = transform_matrix(landmarks, RESOLUTION, XSEG_FACE_TYPE)
    crop = cv2.warpAffine(frame, m, (RESOLUTION, RESOLUTION), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return crop.astype(np.float32) / 255.0


def xseg_hull(landmarks: np.ndarray) -> np.ndarray:
    """The dst face's landmark hull in the mask network's 256 px whole-face crop (float32, 1 inside): the hull
    channel of a ``hull_prior`` mask model (the swapped face is pasted on the dst's landmarks, so they are its)."""
    m = transform_matrix(landmarks, RESOLUTION, XSEG_FACE_TYPE)
    return hull_mask((RESOLUTION, RESOLUTION), apply_affine(m, landmarks))


def xseg_input(context: np.ndarray, face: np.ndarray, to_xseg: np.ndarray) -> np.ndarray:
    """The mask network's input for xseg-prd: ``context`` with the swapped ``face`` (model crop, float32 RGB) pasted
    where ``to_xseg`` puts it."""
    n = context.shape[0]
    warped = cv2.warpAffine(face, to_xseg, (n, n), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    cover = np.ones(face.shape[:2], np.float32)
    cover = cv2.warpAffine(cover, to_xseg, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return np.clip(context + (warped - context) * cover[..., None], 0.0, 1.0).astype(np.float32)


def xseg_to_crop(mask: np.ndarray, to_xseg: np.ndarray, res: int) -> np.ndarray:
    """A 256 px whole-face mask back in the model's ``res`` crop (zero where the crop reaches past the whole face)."""
    flags = cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR
    out = cv2.warpAffine(mask, to_xseg, (res, res), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return np.clip(out, 0.0, 1.0)


def predicted_xseg(
    model: MaskModel,
    contexts: list[np.ndarray],
    faces: np.ndarray,
    to_xseg: list[np.ndarray],
    res: int,
    landmarks: list[np.ndarray],
) -> list[np.ndarray]:
    """xseg-prd for a batch of swapped ``faces`` (N, res, res, 3) on the dst faces of ``landmarks`` (frame px): one
    mask network call, masks in the crop."""
    inputs = np.stack([xseg_input(c, f, m) for c, f, m in zip(contexts, faces, to_xseg)])
    if model.hull_prior:
        inputs = np.concatenate([inputs, np.stack([xseg_hull(lm) for lm in landmarks])[..., None]], axis=3)
    x = torch.from_numpy(np.ascontiguousarray(inputs.transpose(0, 3, 1, 2))).to(model.device)
    probs = model.predict_tensor(x)[:, 0].float().cpu().numpy()
    return [xseg_to_crop(p, m, res) for p, m in zip(probs, to_xseg)]
