"""Synthetic occluders for mask training and benchmarking: pure functions of an explicit ``np.random.Generator``.

An occluder is a shape (random polygon, ellipse, hand-like blob of palm + fingers, hair-like strand or a bar like a
microphone) filled with a procedural texture (solid, gradient, low-frequency noise, stripes, checks) or with a patch
cut from another image (other faces, frames, backgrounds). It comes back as a full-canvas RGB image and its alpha;
``occlude`` pastes one or more onto a face so that they overlap its landmark hull, and returns the alpha that
is the label (where alpha > 0.5 the face is hidden).

Every image is float32 RGB in [0, 1]; masks and alphas are float32 (H, W) in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

SHAPES = ("polygon", "ellipse", "hand", "strand", "bar")


def texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A procedural (h, w, 3) fill: solid, gradient, smooth noise, stripes or checks, in random colours."""
    kind = int(rng.integers(5))
    c0, c1 = rng.random(3).astype(np.float32), rng.random(3).astype(np.float32)
    if kind == 0:
        out = np.broadcast_to(c0, (h, w, 3)).copy()
    elif kind == 1:
        ang = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = xx * np.cos(ang) + yy * np.sin(ang)
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
        out = c0 + (c1 - c0) * t[..., None]
    elif kind == 2:
        cells = int(rng.integers(2, 12))
        small = rng.random((cells, cells, 3)).astype(np.float32)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    else:
        period = rng.uniform(4, 24)
        ang = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        a = np.sin((xx * np.cos(ang) + yy * np.sin(ang)) * (2 * np.pi / period))
        if kind == 4:
            a = a * np.sin((-xx * np.sin(ang) + yy * np.cos(ang)) * (2 * np.pi / period))
        t = (a > 0).astype(np.float32)
        out = c0 + (c1 - c0) * t[..., None]
    shade = rng.uniform(0.7, 1.1)
    return np.clip(out * shade + rng.normal(0, 0.02, (h, w, 3)).astype(np.float32), 0, 1).astype(np.float32)


def skin_fill(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A skin-like fill with soft shading (hands): a random tone from dark to pale, lit from one side."""
    tone = rng.uniform(0.15, 0.95)
    base = np.array([0.95, 0.75, 0.62], np.float32) * tone + rng.normal(0, 0.03, 3).astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (xx * np.cos(ang) + yy * np.sin(ang)) / max(h, w)
    light = 0.8 + 0.4 * (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    return np.clip(base * light[..., None], 0, 1).astype(np.float32)


def cut_patch(source: np.ndarray, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random crop of ``source`` (uint8 or float RGB) resized to (h, w), float32 in [0, 1]."""
    src = source.astype(np.float32) / 255.0 if source.dtype == np.uint8 else source.astype(np.float32)
    sh, sw = src.shape[:2]
    ch = int(rng.integers(max(8, sh // 6), sh + 1))
    cw = int(np.clip(ch * rng.uniform(0.6, 1.6), 8, sw))
    y, x = int(rng.integers(0, sh - ch + 1)), int(rng.integers(0, sw - cw + 1))
    out = cv2.resize(src[y : y + ch, x : x + cw], (w, h), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def shape_alpha(
    rng: np.random.Generator, size: int, kind: str, center: tuple[float, float], radius: float
) -> np.ndarray:
    """(size, size) uint8 0/1 mask of one ``kind`` of shape about ``center`` with ``radius`` (px)."""
    m = np.zeros((size, size), np.uint8)
    cx, cy = center
    rot = rng.uniform(0, 2 * np.pi)
    if kind == "polygon":
        n = int(rng.integers(3, 9))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n)) + rot
        r = radius * rng.uniform(0.5, 1.0, n)
        pts = np.stack([cx + r * np.cos(ang), cy + r * np.sin(ang)], 1)
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
    elif kind == "ellipse":
        axes = (max(1, int(radius)), max(1, int(radius * rng.uniform(0.3, 1.0))))
        cv2.ellipse(m, (int(cx), int(cy)), axes, float(np.degrees(rot)), 0, 360, 1, -1)
    elif kind == "hand":  # palm + 4-5 fingers fanned the same way
        palm = radius * 0.55
        cv2.ellipse(m, (int(cx), int(cy)), (int(palm), int(palm * 0.85)), float(np.degrees(rot)), 0, 360, 1, -1)
        fingers = int(rng.integers(4, 6))
        width = max(2, int(palm * rng.uniform(0.25, 0.35)))
        for f in range(fingers):
            a = rot + (f - (fingers - 1) / 2) * rng.uniform(0.2, 0.35)
            length = radius * rng.uniform(0.8, 1.2)
            p0 = (int(cx + palm * 0.6 * np.cos(a)), int(cy + palm * 0.6 * np.sin(a)))
            p1 = (int(cx + length * np.cos(a)), int(cy + length * np.sin(a)))
            cv2.line(m, p0, p1, 1, width)
    elif kind == "strand":  # a curved band across the face, like a lock of hair
        t = np.linspace(-1, 1, 24)
        bend = rng.uniform(-0.5, 0.5) * radius
        xs, ys = t * radius * 1.5, bend * (1 - t**2)
        c, s = np.cos(rot), np.sin(rot)
        pts = np.stack([cx + xs * c - ys * s, cy + xs * s + ys * c], 1)
        cv2.polylines(m, [np.round(pts).astype(np.int32)], False, 1, max(2, int(radius * rng.uniform(0.1, 0.4))))
    elif kind == "bar":  # a microphone, a pen, a cup's edge: a thick straight segment with a round end
        d = np.array([np.cos(rot), np.sin(rot)])
        p0, p1 = np.array([cx, cy]) - d * radius * 2, np.array([cx, cy]) + d * radius * 0.3
        width = max(2, int(radius * rng.uniform(0.2, 0.5)))
        cv2.line(m, tuple(int(v) for v in p0), tuple(int(v) for v in p1), 1, width)
        cv2.circle(m, tuple(int(v) for v in p1), int(width * rng.uniform(0.6, 1.2)), 1, -1)
    else:
        raise ValueError(f"unknown occluder shape {kind!r} (one of {', '.join(SHAPES)})")
    return m


def make_occluder(
    rng: np.random.Generator,
    size: int,
    center: tuple[float, float],
    radius: float,
    patches: Sequence[np.ndarray] = (),
    textures: bool = True,
    shapes: Sequence[str] = SHAPES,
) -> tuple[np.ndarray, np.ndarray]:
    """One occluder on a (size, size) canvas: (RGB float32 (S, S, 3), alpha float32 (S, S)). Its fill is a
    procedural texture (``textures``), skin (hands), or a patch of one of ``patches``, chosen at random among
    those available."""
    kind = shapes[int(rng.integers(len(shapes)))]
    m = shape_alpha(rng, size, kind, center, radius)
    fills = (["texture"] if textures else []) + (["patch"] if len(patches) else [])
    if kind == "hand" and textures:
        fills.append("skin")
    if not fills:
        raise ValueError("an occluder needs textures or patches to fill it")
    fill = fills[int(rng.integers(len(fills)))]
    if fill == "texture":
        rgb = texture(rng, size, size)
    elif fill == "skin":
        rgb = skin_fill(rng, size, size)
    else:
        rgb = cut_patch(patches[int(rng.integers(len(patches)))], rng, size, size)
    sigma = rng.uniform(0.3, 1.2)
    alpha = np.clip(cv2.GaussianBlur(m.astype(np.float32), (0, 0), sigma), 0, 1)
    return rgb, alpha


def paste(image: np.ndarray, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``image`` with the occluder composited over it (float32 [0, 1])."""
    a = alpha[..., None]
    return (image * (1 - a) + rgb * a).astype(np.float32)


def occlude(
    image: np.ndarray,
    hull: np.ndarray,
    rng: np.random.Generator,
    patches: Sequence[np.ndarray] = (),
    textures: bool = True,
    count: tuple[int, int] = (1, 3),
    shapes: Sequence[str] = SHAPES,
    radius: tuple[float, float] = (0.12, 0.35),
) -> tuple[np.ndarray, np.ndarray]:
    """``image`` (float32 (S, S, 3)) with ``count`` (inclusive range) occluders placed over its face ``hull``
    (float (S, S), > 0.5 = face): each centred on a random hull pixel, pulled toward the hull's edge half the time
    (hands and hair come in from the side), ``radius`` x the hull's extent in radius. Returns (image, alpha of all
    occluders)."""
    size = image.shape[0]
    ys, xs = np.nonzero(hull > 0.5)
    out = image.astype(np.float32)
    total = np.zeros((size, size), np.float32)
    if len(xs) == 0:
        return out, total
    extent = float(max(np.ptp(xs), np.ptp(ys), 8))
    mid = np.array([xs.mean(), ys.mean()])
    for _ in range(int(rng.integers(count[0], count[1] + 1))):
        j = int(rng.integers(len(xs)))
        c = np.array([xs[j], ys[j]], np.float64)
        if rng.random() < 0.5:
            c = c + (c - mid) * rng.uniform(0.3, 1.0)
        r = extent * rng.uniform(*radius)
        rgb, alpha = make_occluder(rng, size, (float(c[0]), float(c[1])), r, patches, textures, shapes)
        out = paste(out, rgb, alpha)
        total = np.maximum(total, alpha)
    return out, total
