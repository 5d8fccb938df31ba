"""Training-sample geometry and photometric augmentation (DFL-style), as pure functions of an explicit
``np.random.Generator``.

One ``WarpParams`` per sample drives every image of that sample: the network input gets
``apply_warp(x, p, warp=True, transform=True, flip=True)``, the target and masks the same affine and flip without
the grid warp (``warp=False``). Images use cubic + replicate border (the defaults); masks should pass
``border=cv2.BORDER_CONSTANT, interpolation=cv2.INTER_LINEAR``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MIN_WARP_SIZE = 64  # smaller samples are warped at this size and resized back (the grid needs room for cells)


@dataclass(frozen=True, eq=False)
class WarpParams:
    """Random geometry of one sample, in pixels of a ``size`` x ``size`` working image."""

    size: int
    mapx: np.ndarray | None  # (size, size) float32 source x per output pixel, None without random warp
    mapy: np.ndarray | None
    matrix: np.ndarray  # (2, 3) float64 affine (rotation/scale about the centre + translation)
    flip: bool  # horizontal flip, applied last


def _interp_matrix(size: int, count: int) -> np.ndarray:
    """(size, count) weights of linear interpolation from ``count`` knots spanning the image's outer pixel edges
    (knot k at pixel coordinate k * size / (count - 1) - 0.5) to the pixel centres 0..size-1."""
    u = (np.arange(size) + 0.5) * ((count - 1) / size)
    i0 = np.minimum(np.floor(u).astype(np.int64), count - 2)
    w = u - i0
    m = np.zeros((size, count))
    m[np.arange(size), i0] = 1.0 - w
    m[np.arange(size), i0 + 1] = w
    return m


def _random_grid(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """DFL's random warp V1: a coarse grid (cell = size/2, /4 or /8) whose interior knots move by
    N(0, 1) * 0.24 * cell, interpolated bilinearly into full-resolution remap maps.

    DFL resizes the knot grid to size + cell and crops half a cell, which leaves the maps half a pixel off (and
    misaligned when the cell does not divide the size); interpolating the displacement at the pixel centres
    gives the same field without the offset."""
    cell = size // (2 ** int(rng.integers(1, 4)))
    count = size // cell + 1
    disp = np.zeros((2, count, count))
    disp[:, 1:-1, 1:-1] = rng.standard_normal((2, count - 2, count - 2)) * (0.24 * cell)
    m = _interp_matrix(size, count)
    dx, dy = m @ disp[0] @ m.T, m @ disp[1] @ m.T  # separable bilinear interpolation
    ii = np.arange(size, dtype=np.float64)
    return (ii[None, :] + dx).astype(np.float32), (ii[:, None] + dy).astype(np.float32)


def gen_warp_params(
    size: int,
    rng: np.random.Generator,
    *,
    flip_prob: float = 0.4,
    rotation_range: tuple[float, float] = (-10.0, 10.0),
    scale_amount: float = 0.15,
    tx_range: float = 0.05,
    random_warp: bool = True,
) -> WarpParams:
    """Random sample geometry: rotation U(rotation_range) degrees, scale U(1/(1+s), 1+s), translation
    U(-tx_range, tx_range) * size on each axis (about (size//2, size//2)), flip with ``flip_prob`` (DFL: 0.4 when
    the side's flip option is on, else pass 0), and a random grid warp.

    The affine and flip are drawn before the grid, so for one seed they do not depend on ``random_warp``."""
    work = max(int(size), MIN_WARP_SIZE)
    rotation = rng.uniform(*rotation_range)
    scale = rng.uniform(1.0 / (1.0 + scale_amount), 1.0 + scale_amount)
    tx, ty = rng.uniform(-tx_range, tx_range, size=2)
    flip = bool(rng.random() < flip_prob)
    matrix = cv2.getRotationMatrix2D((work // 2, work // 2), rotation, scale)
    matrix[:, 2] += (tx * work, ty * work)
    mapx, mapy = _random_grid(work, rng) if random_warp else (None, None)
    return WarpParams(size=work, mapx=mapx, mapy=mapy, matrix=matrix, flip=flip)


def _restore_channels(out: np.ndarray, like: np.ndarray) -> np.ndarray:
    """OpenCV drops a trailing 1-channel axis; put it back."""
    return out[..., None] if like.ndim == 3 and out.ndim == 2 else out


def apply_warp(
    image: np.ndarray,
    params: WarpParams,
    warp: bool,
    transform: bool,
    flip: bool,
    border: int = cv2.BORDER_REPLICATE,
    interpolation: int = cv2.INTER_CUBIC,
) -> np.ndarray:
    """``image`` (square, (S, S) or (S, S, C)) through the grid warp, then the affine, then the flip, each only if
    requested (and, for warp/flip, present in ``params``). Returns a new array of the same shape and dtype.

    Images of another size than ``params.size`` are resized to it for the warp/affine and back (DFL's rule for
    samples under 64 px). Cubic can overshoot [0, 1]: the caller clips. Unlike DFL, the grid remap uses ``border``
    too (DFL's zero border darkens the edge pixels the maps reach just past)."""
    src = np.asarray(image)
    h, w = src.shape[:2]
    if h != w:
        raise ValueError(f"apply_warp expects a square image, got {src.shape}")
    do_warp = warp and params.mapx is not None and params.mapy is not None
    out = src
    if do_warp or transform:
        size = params.size
        if w != size:
            out = cv2.resize(out, (size, size), interpolation=interpolation)
        if do_warp:
            out = cv2.remap(out, params.mapx, params.mapy, interpolation, borderMode=border)
        if transform:
            out = cv2.warpAffine(out, params.matrix, (size, size), flags=interpolation, borderMode=border)
        if w != size:
            out = cv2.resize(out, (w, h), interpolation=interpolation)
        out = _restore_channels(out, src)
    if flip and params.flip:
        out = out[:, ::-1]
    return np.array(out, dtype=src.dtype, copy=True, order="C")


# --------------------------------------------------------------------------------------------------- photometric


def _as_float(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float32)


def _finish(out: np.ndarray, like: np.ndarray) -> np.ndarray:
    return np.clip(_restore_channels(out, like), 0.0, 1.0).astype(np.float32)


def random_hsv(image: np.ndarray, power: float, rng: np.random.Generator) -> np.ndarray:
    """DFL's ``random_hsv_power``: hue shifted by a uniform integer in ±max(1, int(180 * power)) degrees
    (OpenCV float HSV, H in [0, 360)), S and V each offset by (U - 0.5) * power. Power 0 returns a copy."""
    img = _as_float(image)
    if power <= 0:
        return img.copy()
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    k = max(1, int(180 * power))
    hsv[..., 0] = (hsv[..., 0] + rng.integers(-k, k + 1)) % 360.0
    hsv[..., 1] = np.clip(hsv[..., 1] + (rng.random() - 0.5) * power, 0.0, 1.0)
    hsv[..., 2] = np.clip(hsv[..., 2] + (rng.random() - 0.5) * power, 0.0, 1.0)
    return _finish(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), img)


def random_shading(image: np.ndarray, depth: float, rng: np.random.Generator) -> np.ndarray:
    """Light falling off across the image: multiplied by a linear ramp at a random angle from 1 down to
    ``1 - U(0, depth)`` on the far side, so one cheek or the forehead goes into shadow (a mask network must not
    take shade for an occluder). Depth 0 returns a copy."""
    img = _as_float(image)
    if depth <= 0:
        return img.copy()
    h, w = img.shape[:2]
    angle, dark = rng.uniform(0, 2 * np.pi), rng.uniform(0, depth)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (xx - w / 2) * np.cos(angle) + (yy - h / 2) * np.sin(angle)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    light = 1.0 - dark * t
    return _finish(img * (light[..., None] if img.ndim == 3 else light), img)


def motion_kernel(length: int, angle: float) -> np.ndarray:
    """Normalised (length, length) line kernel at ``angle`` degrees."""
    k = np.zeros((length, length), dtype=np.float32)
    k[(length - 1) // 2, :] = 1.0
    c = (length - 1) / 2.0
    k = cv2.warpAffine(k, cv2.getRotationMatrix2D((c, c), angle, 1.0), (length, length))
    return k / max(float(k.sum()), 1e-8)


def random_blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Motion blur (kernel 10..19 px, random angle) or Gaussian blur (sigma in [3, 8), kernel ~2.75 sigma, odd),
    50/50 (ranges of DFL PR 5441)."""
    img = _as_float(image)
    if rng.random() < 0.5:
        kernel = motion_kernel(int(rng.integers(10, 20)), float(rng.uniform(0.0, 360.0)))
        out = cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    else:
        sigma = float(rng.uniform(3.0, 8.0))
        ksize = int(2.75 * sigma) | 1  # the PR's short kernel (~±1.4 sigma), not OpenCV's ±4 sigma default
        out = cv2.GaussianBlur(img, (ksize, ksize), sigma)
    return _finish(out, img)


def random_noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-pixel, per-channel noise, one kind chosen uniformly: Gaussian or Laplace with scale 20..40 (/255), or
    Poisson with lambda 15..30 (/255). The PR adds raw Poisson counts (a +lambda/255 brightening); ours is centred."""
    img = _as_float(image)
    kind = int(rng.integers(3))
    if kind == 2:
        lam = rng.uniform(15.0, 30.0)
        noise = (rng.poisson(lam, img.shape) - lam) / 255.0
    else:
        scale = rng.uniform(20.0, 40.0) / 255.0
        noise = rng.normal(0.0, scale, img.shape) if kind == 0 else rng.laplace(0.0, scale, img.shape)
    return _finish(img + noise.astype(np.float32), img)


def random_jpeg(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """JPEG round trip at quality 50..84 (OpenCV codec; RGB is swapped to BGR so chroma subsampling is right)."""
    img = _as_float(image)
    u8 = np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    color = u8.ndim == 3 and u8.shape[2] == 3
    if color:
        u8 = u8[..., ::-1]
    ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(50, 85))])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE)
    if color:
        dec = dec[..., ::-1]
    return _finish(dec.astype(np.float32) / 255.0, img)


def random_downsample(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Resize to 12.5..25 % and back, cubic both ways (loss of detail as from a low-resolution source)."""
    img = _as_float(image)
    h, w = img.shape[:2]
    f = rng.uniform(0.125, 0.25)
    small = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_CUBIC)
    return _finish(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), img)


def random_degrade(
    image: np.ndarray,
    rng: np.random.Generator,
    *,
    blur: float = 0.0,
    noise: float = 0.0,
    jpeg: float = 0.0,
    downsample: float = 0.0,
) -> np.ndarray:
    """Each degradation with its probability, in random order (the PR applies every enabled one every time,
    i.e. probability 1)."""
    steps = [(random_blur, blur), (random_noise, noise), (random_jpeg, jpeg), (random_downsample, downsample)]
    out = _as_float(image).copy()
    for i in rng.permutation(len(steps)):
        fn, p = steps[i]
        if p > 0 and rng.random() < p:
            out = fn(out, rng)
    return out
