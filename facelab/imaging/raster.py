"""Triangle rasterisation with a z-buffer, and texture mapping through it: the renderer of ``augment render``.

Pure numpy, vectorised over every (triangle, pixel-in-its-box) pair, so a 256 px frame with ~1,300 triangles takes a
few milliseconds. Pixel (row i, column j) is sampled at its centre, the point (x=j, y=i) - OpenCV's convention, so
``cv2.remap`` with the maps built here lands on the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Raster:
    """Which triangle is nearest at each pixel and where in it: ``tri`` (H, W) int64, -1 where none covers;
    ``bary`` (H, W, 3) float32 barycentric weights of its three corners (0 where ``tri`` is -1)."""

    tri: np.ndarray
    bary: np.ndarray

    @property
    def covered(self) -> np.ndarray:
        """(H, W) bool: pixels some triangle covers."""
        return self.tri >= 0


def rasterize(xy: np.ndarray, z: np.ndarray, triangles: np.ndarray, size: tuple[int, int]) -> Raster:
    """Z-buffer the triangles ``triangles`` (T, 3) of vertices at image positions ``xy`` (V, 2) with depth ``z``
    (V,) (smaller = nearer the camera) into an image of ``size`` (height, width). Both windings are drawn: a surface
    that folds over itself is resolved by depth alone."""
    h, w = size
    v = np.asarray(xy, dtype=np.float64)[triangles]  # (T, 3, 2)
    d = np.asarray(z, dtype=np.float64)[triangles]  # (T, 3)
    x0 = np.clip(np.ceil(v[..., 0].min(1)), 0, w).astype(np.int64)
    x1 = np.clip(np.floor(v[..., 0].max(1)), -1, w - 1).astype(np.int64)
    y0 = np.clip(np.ceil(v[..., 1].min(1)), 0, h).astype(np.int64)
    y1 = np.clip(np.floor(v[..., 1].max(1)), -1, h - 1).astype(np.int64)
    e1, e2 = v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    bw, bh = x1 - x0 + 1, y1 - y0 + 1
    keep = np.flatnonzero((bw > 0) & (bh > 0) & (np.abs(det) > 1e-9))
    tri = -np.ones((h, w), np.int64)
    bary = np.zeros((h, w, 3), np.float32)
    if keep.size == 0:
        return Raster(tri, bary)
    counts = bw[keep] * bh[keep]
    t = np.repeat(keep, counts)  # one entry per (triangle, pixel of its box)
    off = np.arange(t.size) - np.repeat(np.cumsum(counts) - counts, counts)
    px = x0[t] + off % bw[t]
    py = y0[t] + off // bw[t]
    rx, ry = px - v[t, 0, 0], py - v[t, 0, 1]
    b1 = (rx * e2[t, 1] - ry * e2[t, 0]) / det[t]
    b2 = (e1[t, 0] * ry - e1[t, 1] * rx) / det[t]
    b0 = 1.0 - b1 - b2
    eps = -1e-7  # pixels on a shared edge belong to both triangles; depth then picks one
    inside = (b0 >= eps) & (b1 >= eps) & (b2 >= eps)
    t, px, py, b0, b1, b2 = t[inside], px[inside], py[inside], b0[inside], b1[inside], b2[inside]
    depth = b0 * d[t, 0] + b1 * d[t, 1] + b2 * d[t, 2]
    pix = py * w + px
    zbuf = np.full(h * w, np.inf)
    np.minimum.at(zbuf, pix, depth)  # the z-buffer: nearest depth per pixel
    win = np.flatnonzero(depth == zbuf[pix])  # ties (a shared edge at one depth) draw either: same surface
    tri.ravel()[pix[win]] = t[win]
    bary.reshape(-1, 3)[pix[win]] = np.stack([b0[win], b1[win], b2[win]], 1)
    return Raster(tri, bary)


def corner_maps(raster: Raster, corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``cv2.remap`` maps (x, y), float32 (H, W) each, that interpolate per-triangle corner values ``corners``
    (T, 3, 2) - e.g. texture coordinates - over the raster; uncovered pixels get -1 (outside any image)."""
    covered = raster.covered
    uv = np.full((*raster.tri.shape, 2), -1.0, np.float32)
    c = corners.astype(np.float32)[raster.tri[covered]]  # (P, 3, 2)
    uv[covered] = np.einsum("pk,pkc->pc", raster.bary[covered], c)
    return np.ascontiguousarray(uv[..., 0]), np.ascontiguousarray(uv[..., 1])


def render_textured(
    texture: np.ndarray,
    uv: np.ndarray,
    xy: np.ndarray,
    z: np.ndarray,
    triangles: np.ndarray,
    size: tuple[int, int],
) -> tuple[np.ndarray, Raster]:
    """Draw ``triangles`` (T, 3) placed at ``xy`` (V, 2) / ``z`` (V,) with texture ``texture`` sampled at the
    per-corner pixel coordinates ``uv`` (T, 3, 2) (bilinear); returns the image (H, W, C), uncovered pixels 0, and
    the raster (which triangle shows where)."""
    raster = rasterize(xy, z, triangles, size)
    mx, my = corner_maps(raster, uv)
    out = cv2.remap(texture, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out[~raster.covered] = 0
    return out, raster
