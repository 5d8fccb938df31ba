"""Mask training samples: faces re-cropped to the mask network's whole face at 256 px, with their labels, and the
augmentation of one sample as a pure function of ``(seed, k)`` (``k`` = global sample counter), so a resumed run
is bit-exact and any number of loader processes gives the same batches.

Labels: a face that carries include/exclude polygons (``FaceMeta.masks``) is labelled by them (includes filled
first, then excludes, exclude wins: DFL's rule, in aligned px moved into the crop); with ``generic`` the other
faces are labelled by their landmark hull. Synthetic occluders pasted on a face cut their alpha out of its label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facelab.config import MaskConfig
from facelab.errors import FacesetError
from facelab.faceset.meta import FaceMeta
from facelab.faceset.store import face_files, read_face
from facelab.geometry.facetype import FaceType, transform_matrix
from facelab.geometry.umeyama import apply_affine
from facelab.imaging import warp
from facelab.imaging.masks import hull_mask, polygon_mask
from facelab.mask.occluders import occlude
from facelab.models.xseg import RESOLUTION

FACE_TYPE = FaceType.WHOLE_FACE  # DFL's XSeg crop


@dataclass
class MaskBank:
    images: np.ndarray  # (N, 256, 256, 3) uint8 RGB, whole face
    labels: np.ndarray  # (N, 256, 256) uint8 0/1: polygons, or the hull for generic faces
    hulls: np.ndarray  # (N, 256, 256) uint8 0/1 landmark hulls (where occluders are placed)
    labelled: np.ndarray  # (N,) bool: the label comes from polygons
    names: list[str]

    def __len__(self) -> int:
        return len(self.names)


def has_polygons(meta: FaceMeta) -> bool:
    return any(p.get("type") == "include" for p in meta.masks)


def recrop(image: np.ndarray, meta: FaceMeta, resolution: int = RESOLUTION) -> tuple[np.ndarray, np.ndarray]:
    """The face re-framed from its aligned crop to the whole face at ``resolution`` (cubic), and the 2x3
    aligned -> crop matrix (the same rule as the swap trainer's re-crop)."""
    m = transform_matrix(meta.landmarks, resolution, FACE_TYPE)
    out = cv2.warpAffine(image, m, (resolution, resolution), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return out, m


def crop_hull(meta: FaceMeta, m: np.ndarray, resolution: int = RESOLUTION) -> np.ndarray:
    """The face's landmark hull in the crop ``m`` maps its aligned image to (float32, 1 inside): the mask
    network's 4th input channel with ``MaskConfig.hull_prior``."""
    return hull_mask((resolution, resolution), apply_affine(m, meta.landmarks))


def face_labels(meta: FaceMeta, m: np.ndarray, resolution: int = RESOLUTION) -> tuple[np.ndarray, np.ndarray]:
    """(label, hull) in the crop ``m`` maps to: the polygons' label (the hull when the face has none)."""
    shape = (resolution, resolution)
    hull = crop_hull(meta, m, resolution)
    if not has_polygons(meta):
        return hull, hull
    moved = [{**p, "points": apply_affine(m, np.asarray(p["points"], np.float64))} for p in meta.masks]
    return polygon_mask(shape, moved), hull


def load_mask_bank(folders: Sequence[str | Path], generic: bool) -> MaskBank:
    """Every face of ``folders`` that has polygons, plus (``generic``) every other face, with its label."""
    if not folders:
        raise FacesetError("no faceset given (--faceset)")
    images, labels, hulls, flags, names = [], [], [], [], []
    total = 0
    for folder in folders:
        files = face_files(folder)
        if not files:
            raise FacesetError(f"{folder}: faceset is empty (run 'facelab extract' first)")
        total += len(files)
        for path in files:
            img, meta = read_face(path)
            if not (generic or has_polygons(meta)):
                continue
            crop, m = recrop(img, meta)
            label, hull = face_labels(meta, m)
            images.append(crop)
            labels.append(label.astype(np.uint8))
            hulls.append(hull.astype(np.uint8))
            flags.append(has_polygons(meta))
            names.append(f"{Path(folder).name}/{path.name}")
    if not images:
        where = ", ".join(str(f) for f in folders)
        raise FacesetError(
            f"{where}: none of the {total} faces carries include/exclude polygons (label some, or train with --generic)"
        )
    return MaskBank(np.stack(images), np.stack(labels), np.stack(hulls), np.array(flags, bool), names)


def pick(n: int, seed: int, k: int) -> int:
    """Face of sample ``k``: each face once per epoch, in a seeded order."""
    epoch, pos = divmod(k, n)
    return int(np.random.default_rng([seed, epoch, 7]).permutation(n)[pos])


def make_sample(bank: MaskBank, cfg: MaskConfig, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``k``: (input float32 (256, 256, 3) in [0, 1], label float32 (256, 256) in {0, 1}); with
    ``cfg.hull_prior`` the input has a 4th channel, the face's landmark hull under the same geometry as the label
    (occluders are not cut out of it: the landmarks do not see them).

    Colour jitter on the face -> synthetic occluders (patches cut from the other faces of the bank, whole crops
    with their backgrounds; procedural textures; hands) -> one random affine + grid warp + flip on image and label
    alike (DFL warps both) -> blur or motion blur on the image."""
    rng = np.random.default_rng([cfg.seed, k, 1])
    n = len(bank)
    i = pick(n, cfg.seed, k)
    img = bank.images[i].astype(np.float32) / 255.0
    label = bank.labels[i].astype(np.float32)
    if cfg.hsv_power > 0:
        img = warp.random_hsv(img, cfg.hsv_power, rng)
    if cfg.shading > 0 and rng.random() < 0.5:
        img = warp.random_shading(img, cfg.shading, rng)
    prob = cfg.occluder_prob if bank.labelled[i] else cfg.generic_occluder_prob
    if rng.random() < prob:
        others = [bank.images[j] for j in rng.choice(n, size=min(n, 3), replace=False) if j != i]
        img, alpha = occlude(img, bank.hulls[i], rng, patches=others, textures=True)
        label = label * (alpha <= 0.5)
    p = warp.gen_warp_params(RESOLUTION, rng, flip_prob=0.5, random_warp=cfg.random_warp)
    img = np.clip(warp.apply_warp(img, p, warp=True, transform=True, flip=True), 0, 1)
    geometry = {"warp": True, "transform": True, "flip": True, "border": cv2.BORDER_CONSTANT}
    label = warp.apply_warp(label, p, interpolation=cv2.INTER_LINEAR, **geometry)
    if cfg.blur_prob > 0 and rng.random() < cfg.blur_prob:
        img = warp.random_blur(img, rng) if rng.random() < 0.5 else _light_blur(img, rng)
    if cfg.hull_prior:
        hull = warp.apply_warp(bank.hulls[i].astype(np.float32), p, interpolation=cv2.INTER_LINEAR, **geometry)
        img = np.concatenate([img, (hull > 0.5).astype(np.float32)[..., None]], axis=2)
    return img.astype(np.float32), (label > 0.5).astype(np.float32)


def _light_blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A milder Gaussian blur than ``warp.random_blur``'s (sigma 0.5-2): soft focus rather than a smear."""
    return np.clip(cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 2.0)), 0, 1).astype(np.float32)
