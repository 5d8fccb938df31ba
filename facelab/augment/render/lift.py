"""A source face lifted to 3D: its FaceMesh surface plus anchor points over hair, ears, neck and background.

Face profiling as in Zhu et al. 2016 (the 300W-LP recipe): the dense face mesh alone would turn like a mask floating
over a hole, so the whole crop is meshed. Anchors on rings around the face oval and on a grid over the rest take
their depth from an ellipsoid head fitted to the face (skull centre behind the eyes, width and height from the
oval); points the head's silhouette does not reach lie on the depth of its rim. Each point carries a rotation weight:
1 on the head, falling smoothly to 0 over the background, so a turned head drags its neck and hair with it while the
frame's edges stay where they are and nothing uncovers a hole.

Camera: the one ``head_pose`` measures poses with (focal length = the crop's side, principal point at its centre),
so that a render turned by 30 degrees reads 30 degrees more. FaceMesh's weak-perspective points are lifted into it
at the distance where one pixel is one unit (depth = focal length + FaceMesh depth), so ``points`` are camera
coordinates in crop-pixel units, z away from the camera. The head frame (``to_head`` / ``from_head``) has its origin
between the eye centres, axes along the head (x to the image's right on a frontal face, y down, z back) and one
inter-ocular distance (IOD) as its unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import Delaunay

from facelab.geometry.facemesh import CONTOURS, EYES, N_VERTICES, TRIANGLES, hole_strips
from facelab.geometry.polygon import points_in_polygon
from facelab.geometry.pose import ypr_to_rotation

# Skull in head-frame units: centre behind and a little below the eyes (also the yaw/pitch pivot, near the top of
# the neck), semi-axes across, up and back; the oval's measured width and height scale the first two.
HEAD_CENTRE = np.array([0.0, 0.1, 1.3])
HEAD_DEPTH = 1.45
HEAD_WIDTH_PER_OVAL = 0.62  # semi-axis over the oval's width (the oval runs cheek to cheek; ears stick out)
HEAD_HEIGHT_PER_OVAL = 0.75  # the oval stops at the hairline; the skull goes on up
RING_SCALES = (1.12, 1.3, 1.6)  # anchor rings around the oval, as multiples of its radius from its centre
RING_BLEND = (0.6, 0.25, 0.0)  # share of the oval's depth offset from the ellipsoid each ring keeps (continuity)
RING_STEP = 0.06  # IOD: each ring at least this much deeper than the one inside it, so the head only falls away
FALLOFF = 0.7  # rotation weight reaches 0 this far outside the silhouette (in silhouette radii)
GRID_CELLS = 8  # background grid cells per side
FACE, EYE, MOUTH, SURROUND = 0, 1, 2, 3  # triangle kinds


@dataclass
class FaceModel:
    """One source face in 3D. The first ``N_VERTICES`` points are the FaceMesh vertices, the rest anchors."""

    image: np.ndarray  # (S, S, 3) uint8 RGB, the texture
    points: np.ndarray  # (V, 3) camera coordinates (crop-pixel units)
    source_xy: np.ndarray  # (V, 2) where each point is in the image: its texture coordinate
    weight: np.ndarray  # (V,) rotation weight in [0, 1]
    triangles: np.ndarray  # (T, 3)
    kind: np.ndarray  # (T,) FACE | EYE | MOUTH | SURROUND
    rotation: np.ndarray  # (3, 3) head frame -> camera
    origin: np.ndarray  # (3,) between the eye centres, crop px
    iod: float  # px
    centre: np.ndarray  # (3,) the pivot, crop px

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[0], self.image.shape[1]

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) camera coordinates -> (N, 2) image px."""
        return project(points, self.size)

    def to_head(self, p: np.ndarray) -> np.ndarray:
        """(N, 3) camera coordinates -> head frame."""
        return (p - self.origin) @ self.rotation / self.iod

    def from_head(self, h: np.ndarray) -> np.ndarray:
        """(N, 3) head frame -> camera coordinates."""
        return h @ self.rotation.T * self.iod + self.origin


def lift(image: np.ndarray, mesh: np.ndarray, yaw: float, pitch: float, roll: float) -> FaceModel:
    """Build the 3D model of the face in ``image`` (an aligned crop) from its FaceMesh ``mesh`` (>= 468, 3) in the
    crop's pixels and its head pose (degrees, ``head_pose`` signs)."""
    size = image.shape[:2]
    mesh = np.asarray(mesh, np.float64)[:N_VERTICES]
    eye_z = np.mean([mesh[CONTOURS[u] + CONTOURS[lo], 2].mean() for u, lo in EYES])
    face = unproject(mesh[:, :2], focal(size) + mesh[:, 2] - eye_z, size)
    rot = ypr_to_rotation(yaw, pitch, roll)
    eyes = [face[CONTOURS[u] + CONTOURS[lo]].mean(0) for u, lo in EYES]
    origin = (eyes[0] + eyes[1]) / 2
    iod = float(np.linalg.norm(eyes[0] - eyes[1]))
    oval_idx = CONTOURS["face_oval"]
    head_oval = (face[oval_idx] - origin) @ rot / iod
    axes = np.array(
        [
            HEAD_WIDTH_PER_OVAL * np.ptp(head_oval[:, 0]),
            HEAD_HEIGHT_PER_OVAL * np.ptp(head_oval[:, 1]),
            HEAD_DEPTH,
        ]
    )
    centre = origin + rot @ HEAD_CENTRE * iod
    ellipsoid = rot @ np.diag(1.0 / (axes * iod) ** 2) @ rot.T
    anchors_xy = _anchor_xy(mesh[oval_idx, :2], size)
    depth, rho = _ellipsoid_depth(anchors_xy, size, centre, ellipsoid)
    # rings keep part of the oval's own offset from the ellipsoid, so the surface has no step at the face's edge
    oval_depth, _ = _ellipsoid_depth(mesh[oval_idx, :2], size, centre, ellipsoid)
    offset = face[oval_idx, 2] - oval_depth
    n = len(oval_idx)
    for k, share in enumerate(RING_BLEND):
        ring = slice(k * n, (k + 1) * n)
        # never shallower than the oval: a ring in front of the face's edge would fold over it when the head turns
        depth[ring] = np.maximum(depth[ring] + share * offset, face[oval_idx, 2] + (k + 1) * RING_STEP * iod)
    anchors = unproject(anchors_xy, depth, size)
    points = np.concatenate([face, anchors])
    weight = np.concatenate([np.ones(len(face)), _smooth_fall(rho)])
    source_xy = np.concatenate([mesh[:, :2], anchors_xy])
    holes = hole_strips()
    surround = _surround_triangles(source_xy, oval_idx, len(face))
    triangles = np.concatenate([TRIANGLES, holes["eyes"], holes["mouth"], surround])
    kind = np.concatenate(
        [
            np.full(len(TRIANGLES), FACE),
            np.full(len(holes["eyes"]), EYE),
            np.full(len(holes["mouth"]), MOUTH),
            np.full(len(surround), SURROUND),
        ]
    ).astype(np.int8)
    return FaceModel(image, points, source_xy, weight, triangles, kind, rot, origin, iod, centre)


FOCAL_PER_SIDE = 3.0


def focal(size: tuple[int, int]) -> float:
    """The render camera's focal length for an image of (height, width)."""
    return FOCAL_PER_SIDE * float(max(size))


def unproject(xy: np.ndarray, depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Image px at camera depths -> (N, 3) camera coordinates."""
    h, w = size
    f = focal(size)
    return np.column_stack([(xy[:, 0] - w / 2) * depth / f, (xy[:, 1] - h / 2) * depth / f, depth])


def project(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, 3) camera coordinates -> (N, 2) image px."""
    h, w = size
    f = focal(size)
    z = np.maximum(points[:, 2], 1e-6)
    return np.column_stack([points[:, 0] * f / z + w / 2, points[:, 1] * f / z + h / 2])


def _anchor_xy(oval: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Rings around the oval and a grid (with a denser frame border) over the rest of the crop, (A, 2)."""
    h, w = size
    c = oval.mean(0)
    rings = [c + k * (oval - c) for k in RING_SCALES]
    gx, gy = np.meshgrid(np.linspace(0, w - 1, GRID_CELLS + 1), np.linspace(0, h - 1, GRID_CELLS + 1))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    t = np.linspace(0, 1, 2 * GRID_CELLS + 1)[1:-1]
    border = np.concatenate(
        [np.column_stack([t * (w - 1), np.zeros_like(t)]), np.column_stack([t * (w - 1), np.full_like(t, h - 1)])]
        + [np.column_stack([np.zeros_like(t), t * (h - 1)]), np.column_stack([np.full_like(t, w - 1), t * (h - 1)])]
    )
    # grid points inside the outer ring would crowd it: keep those clearly outside
    outer = RING_SCALES[-1] * np.linalg.norm(oval - c, axis=1).max()
    grid = grid[np.linalg.norm(grid - c, axis=1) > 1.15 * outer]
    return np.concatenate(rings + [grid, border])


def _ellipsoid_depth(
    xy: np.ndarray, size: tuple[int, int], centre: np.ndarray, a: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Camera depth where each pixel's ray first meets the ellipsoid ``(p - centre)^T a (p - centre) = 1``, and the
    ray's closest approach in silhouette radii (<= 1 on the head). A ray that misses takes the rim's depth."""
    h, w = size
    f = focal(size)
    d = np.column_stack([(xy[:, 0] - w / 2) / f, (xy[:, 1] - h / 2) / f, np.ones(len(xy))])  # rays with z = 1
    daa = np.einsum("ni,ij,nj->n", d, a, d)
    dac = d @ (a @ centre)
    cac = float(centre @ a @ centre)
    rho2 = cac - dac**2 / daa  # the quadratic form at the ray's closest approach
    half = np.sqrt(np.maximum(1.0 - rho2, 0.0) / daa)
    return dac / daa - half, np.sqrt(np.maximum(rho2, 0.0))


def _smooth_fall(rho: np.ndarray) -> np.ndarray:
    """1 inside the silhouette, smoothstep down to 0 at ``1 + FALLOFF``."""
    t = np.clip(1.0 - (rho - 1.0) / FALLOFF, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _surround_triangles(xy: np.ndarray, oval: list[int], n_mesh: int) -> np.ndarray:
    """Delaunay triangles joining the face oval to the anchors, none inside the oval."""
    idx = np.r_[np.asarray(oval), np.arange(n_mesh, len(xy))]
    tri = idx[Delaunay(xy[idx]).simplices]
    centroids = xy[tri].mean(1)
    return tri[~points_in_polygon(centroids, xy[oval])]
