"""Render a lifted face with a new pose and expression: deform, turn, texture, z-buffer.

Texture coordinates are the points' source positions, so every surface keeps its own pixels wherever it moves. Two
surfaces have no good source pixels: a face triangle the source saw from behind or edge-on (the far cheek of a turned
face) takes the pixels of its mirror triangle, Poisson-blended into the light around it, when the source was frontal
and saw the mirror squarely, and is inpainted otherwise; the mouth's inside, when the jaw opens, takes an open mouth
of the same person (``MouthTexture.from_face``) or a dark mouth otherwise. All textures sit side by side in one atlas
so that one ``cv2.remap`` draws the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from facelab.augment.render.expression import EDITS
from facelab.augment.render.lift import FACE, MOUTH, FaceModel
from facelab.geometry.facemesh import CONTOURS, LIPS_INNER, MIRROR, N_VERTICES
from facelab.geometry.pose import rotation_to_ypr, ypr_to_rotation
from facelab.imaging.raster import render_textured

MAX_ANGLE = 45.0  # degrees of yaw or pitch change the lifted surround stays plausible for
# A face triangle the source saw from behind or edge-on (cos < SEEN_BARELY) that the edit shows (cos > SHOWN) has no
# pixels of its own: on a near-frontal source (|yaw| <= FRONTAL_YAW) it takes its mirror's when the source saw that
# one squarely (cos > MIRROR_SEEN); otherwise it is inpainted from the skin around it.
SEEN_BARELY = 0.2
SHOWN = 0.2
FRONTAL_YAW = 12.0
MIRROR_SEEN = 0.4
INPAINT_RADIUS = 5
MIN_BLEND_SIDE = 4  # px: mirrored regions narrower than this are left inpainted
MOUTH_MIN_GAP = 0.25  # mouth aspect ratio above which the opening is the source's own, not painted in
_LIP_SAMPLES = len(CONTOURS[LIPS_INNER[0]])


@dataclass(frozen=True)
class Edit:
    """A requested change: yaw and pitch in degrees relative to the source pose (``head_pose`` signs), and
    expressions as (key of ``EDITS``, strength in [0, 1]) pairs, applied in order."""

    yaw: float = 0.0
    pitch: float = 0.0
    expressions: tuple[tuple[str, float], ...] = ()

    def strength(self, name: str) -> float:
        return sum(s for e, s in self.expressions if e == name)

    @property
    def tag(self) -> str:
        """File-name part naming the edit, e.g. ``y+30_p-15_smile1``."""
        return "_".join([f"y{self.yaw:+g}", f"p{self.pitch:+g}"] + [f"{e}{s:.2g}" for e, s in self.expressions])


@dataclass
class MouthTexture:
    """The inside of a mouth: an image and its upper / lower inner-lip contours (``_LIP_SAMPLES`` points each, from
    the corner on the image's left to the other corner)."""

    image: np.ndarray  # (h, w, 3) uint8
    upper: np.ndarray  # (_LIP_SAMPLES, 2) px
    lower: np.ndarray

    @classmethod
    def dark(cls, size: int = 64) -> MouthTexture:
        """A shadowed mouth: dark red at the lips to near black inside."""
        y, x = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
        inner = np.clip(1 - ((x - 0.5) ** 2 * 2.5 + (y - 0.5) ** 2 * 4) ** 0.5, 0, 1)[..., None]
        rim, deep = np.array([70, 28, 30], np.float32), np.array([14, 6, 8], np.float32)
        img = (rim * (1 - inner) + deep * inner).astype(np.uint8)
        xs = np.linspace(0, size - 1, _LIP_SAMPLES)
        edge = np.full(_LIP_SAMPLES, 2.0)
        edge[[0, -1]] = size / 2  # corners meet half-way down
        return cls(img, np.column_stack([xs, edge]), np.column_stack([xs, size - 1 - edge]))

    @classmethod
    def from_face(cls, image: np.ndarray, landmarks68: np.ndarray) -> MouthTexture:
        """The open mouth of an aligned face, from its 68 points' inner lips (60-64 upper, 64-67-60 lower)."""
        lm = np.asarray(landmarks68, np.float64)
        upper = _resample(lm[[60, 61, 62, 63, 64]])
        lower = _resample(lm[[60, 67, 66, 65, 64]])
        return cls(image, upper, lower)


def draw(model: FaceModel, edit: Edit, mouth: MouthTexture | None = None) -> np.ndarray:
    """The face of ``model`` with ``edit`` applied, same size as its image (uint8 RGB)."""
    if max(abs(edit.yaw), abs(edit.pitch)) > MAX_ANGLE:
        raise ValueError(f"yaw and pitch changes must be within +-{MAX_ANGLE:g} degrees")
    points = model.points.copy()
    if edit.expressions:
        h = model.to_head(points[:N_VERTICES])
        d = sum(EDITS[name](h, strength) for name, strength in edit.expressions)
        points[:N_VERTICES] = model.from_head(h + d)
    points = turn(model, points, edit.yaw, edit.pitch)
    uv = model.source_xy[model.triangles]
    unseen = _unseen_faces(model, points)
    mirrored = unseen & _mirror_usable(model)
    uv[mirrored] = model.source_xy[MIRROR[model.triangles[mirrored]]]
    texture = model.image
    if edit.strength("mouth-open") > 0 and _mouth_gap(model.source_xy) < MOUTH_MIN_GAP:
        texture, uv = _with_mouth(model, uv, mouth or MouthTexture.dark())
    xy = model.project(points)
    out, raster = render_textured(texture, uv, xy, points[:, 2], model.triangles, model.size)
    shown = np.maximum(raster.tri, 0)
    # no pixels of their own: what the source never saw (unless mirrored), and slivers a fold opens at the edge
    hole = ~raster.covered | (raster.covered & (unseen & ~mirrored)[shown])
    from_mirror = raster.covered & mirrored[shown]
    if hole.any() or from_mirror.any():
        base = cv2.inpaint(out, (hole | from_mirror).astype(np.uint8), INPAINT_RADIUS, cv2.INPAINT_TELEA)
        out = _blend_in(out, base, from_mirror) if from_mirror.any() else base
    return out


def _blend_in(src: np.ndarray, dst: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``dst`` with the ``mask`` pixels taken from ``src`` by Poisson blending (their detail, ``dst``'s light at
    the boundary): a mirrored cheek is lit like the side it lands on."""
    m = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
    m[[0, -1], :] = 0  # seamlessClone needs a margin inside the frame
    m[:, [0, -1]] = 0
    ys, xs = np.nonzero(m)
    if ys.size == 0 or np.ptp(xs) < MIN_BLEND_SIDE or np.ptp(ys) < MIN_BLEND_SIDE:
        return dst  # a sliver: the inpainted pixels are as good (and OpenCV rejects such masks)
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    centre = ((x0 + x1 + 1) // 2, (y0 + y1 + 1) // 2)
    return cv2.seamlessClone(src, dst, m * 255, centre, cv2.NORMAL_CLONE)


def turn(model: FaceModel, points: np.ndarray, yaw: float, pitch: float) -> np.ndarray:
    """Turn the head about its pivot by a yaw and pitch change (degrees); each point turns by its weight's share
    of the rotation, so the background stays."""
    if yaw == 0 and pitch == 0:
        return points
    y0, p0, r0 = rotation_to_ypr(model.rotation)
    delta = ypr_to_rotation(y0 + yaw, p0 + pitch, r0) @ model.rotation.T
    rotvec = Rotation.from_matrix(delta).as_rotvec()
    rel = points - model.centre
    return Rotation.from_rotvec(model.weight[:, None] * rotvec).apply(rel) + model.centre


def _facing(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Cosine between each triangle's normal and the ray to it (1 = seen square-on, < 0 = facing away); the
    tessellation is wound so that its normals point to the camera."""
    v = points[triangles]
    n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    ray = v.mean(1)
    return -np.sum(n * ray, 1) / np.maximum(np.linalg.norm(n, axis=1) * np.linalg.norm(ray, axis=1), 1e-12)


def _unseen_faces(model: FaceModel, moved: np.ndarray) -> np.ndarray:
    """Face triangles the source saw from behind or edge-on that the edit turns towards the camera. (T,) bool."""
    face = model.kind == FACE
    return face & (_facing(model.points, model.triangles) < SEEN_BARELY) & (_facing(moved, model.triangles) > SHOWN)


def _mirror_usable(model: FaceModel) -> np.ndarray:
    """Face triangles whose mirror the source saw squarely, on a near-frontal source (elsewhere the two sides are
    lit too differently to swap). (T,) bool."""
    yaw, _, _ = rotation_to_ypr(model.rotation)
    face = model.kind == FACE
    if abs(yaw) > FRONTAL_YAW:
        return np.zeros(len(face), bool)
    # a reflection reverses the winding: swap two corners so the mirror triangle's normal faces out too
    mirror = MIRROR[np.where(face[:, None], model.triangles, 0)][:, [0, 2, 1]]
    return face & (_facing(model.points, mirror) > MIRROR_SEEN)


def _mouth_gap(points: np.ndarray) -> float:
    upper, lower = (np.array(CONTOURS[k]) for k in LIPS_INNER)
    width = np.linalg.norm(points[upper[0], :2] - points[upper[-1], :2])
    return float(np.linalg.norm(points[upper, :2] - points[lower, :2], axis=1).mean() / max(width, 1e-9))


def _with_mouth(model: FaceModel, uv: np.ndarray, mouth: MouthTexture) -> tuple[np.ndarray, np.ndarray]:
    """Atlas = face image | mouth image; the mouth triangles' corners point into the mouth image."""
    h, w = model.size
    mh, mw = mouth.image.shape[:2]
    atlas = np.zeros((max(h, mh), w + mw, 3), np.uint8)
    atlas[:h, :w] = model.image
    atlas[:mh, w:] = mouth.image
    upper, lower = (CONTOURS[k] for k in LIPS_INNER)
    lookup = {v: p for v, p in zip(upper, mouth.upper)} | {v: p for v, p in zip(lower[1:-1], mouth.lower[1:-1])}
    uv = uv.copy()
    for t in np.flatnonzero(model.kind == MOUTH):
        uv[t] = [lookup[v] + (w, 0) for v in model.triangles[t]]
    return atlas, uv


def _resample(poly: np.ndarray, n: int = _LIP_SAMPLES) -> np.ndarray:
    """``n`` points evenly spaced by arc length along an open polyline."""
    seg = np.linalg.norm(np.diff(poly, axis=0), axis=1)
    s = np.r_[0, np.cumsum(seg)]
    t = np.linspace(0, s[-1], n)
    return np.column_stack([np.interp(t, s, poly[:, 0]), np.interp(t, s, poly[:, 1])])
