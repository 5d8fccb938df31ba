"""Adaptive discriminator augmentation (StyleGAN2-ADA): the ``bgc`` pipeline and the strength controller.

Layout, kornia-like: small pure functions build per-image 3x3 geometric matrices and 4x4 colour matrices and apply
them to ``[N,C,H,W]`` tensors; ``sample_geometric_matrices`` / ``sample_color_matrices`` draw the random parameters;
``AugmentPipe`` wraps them with the strength ``p`` and ``AdaController`` moves ``p`` from D's sign statistic.

Conventions
- Geometric matrices map *output* pixel coordinates to *input* pixel coordinates (the inverse transform, which is
  what a resampler needs), x right and y down. ``sample_geometric_matrices`` returns them with the origin at the
  image centre; ``centered_to_pixel`` moves the origin to pixel (0, 0), the form the appliers take. Ops compose as
  ``G = G_1 @ G_2 @ ...`` in the order they act on the image.
- Colour matrices act on homogeneous RGB columns ``[r, g, b, 1]`` in the image's own range (~[-1, 1], so 0 is mid
  grey); ops compose as ``C = C_n @ ... @ C_1``.

Geometric application, per image (``apply_geometric_matrices``):
- identity matrix: the image is returned untouched (bit-exact);
- integer matrix (flips, 90-degree rotations, whole-pixel shifts, and compositions of them): an exact pixel gather
  with reflected indices, no interpolation;
- anything else: one anti-aliased resample (``resample``): reflect-pad, 2x upsample with an orthogonal
  least-asymmetric Daubechies low-pass (a symlet; 12 taps by default, the family of the original's sym6), bilinear
  sampling at 2x, the same low-pass and 2x downsample. The filter is computed here by spectral factorisation
  (``orthogonal_lowpass``) instead of being copied from a wavelet table. Because it is orthogonal, 2x synthesis
  followed by 2x analysis is the identity (perfect reconstruction), so the only softening is that of bilinear
  sampling at twice the resolution, and content above the original Nyquist rate that rotation or scaling creates is
  filtered before decimation instead of aliasing.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "AdaController",
    "AugmentPipe",
    "apply_color_matrices",
    "apply_geometric_matrices",
    "blit",
    "centered_to_pixel",
    "color_scale_matrix",
    "color_translate_matrix",
    "hue_rotation_matrix",
    "is_blit",
    "is_identity",
    "luma_flip_matrix",
    "orthogonal_lowpass",
    "reflect_index",
    "reflect_pad",
    "resample",
    "rotate90_matrix",
    "rotate_matrix",
    "sample_color_matrices",
    "sample_geometric_matrices",
    "saturation_matrix",
    "scale_matrix",
    "translate_matrix",
]

# Magnitudes of the bgc ops (StyleGAN2-ADA defaults).
XINT_MAX = 0.125  # integer translation, uniform, fraction of the size
SCALE_STD = 0.2  # isotropic scale, log2 std
ROTATE_MAX = 1.0  # arbitrary rotation, uniform, fraction of 180 degrees
ANISO_STD = 0.2  # anisotropic scale, log2 std
XFRAC_STD = 0.125  # fractional translation, std, fraction of the size
BRIGHTNESS_STD = 0.2
CONTRAST_STD = 0.5  # log2
HUE_MAX = 1.0  # fraction of 180 degrees
SATURATION_STD = 1.0  # log2

GEOMETRIC_OPS = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
COLOR_OPS = ("brightness", "contrast", "lumaflip", "hue", "saturation")
OPS = GEOMETRIC_OPS + COLOR_OPS

_IDENTITY_ATOL = 1e-9
_BLIT_ATOL = 1e-6


# ----------------------------------------------------------------------------------------------------------------------
# Geometric matrices: [N,3,3], output -> input coordinates.


def _stack_matrices(rows: list[list[Tensor | float]], like: Tensor) -> Tensor:
    """[N,R,C] from a nested list of [N] tensors and constants."""
    n = like.shape[0]
    cols = [
        [e if isinstance(e, Tensor) else torch.full((n,), float(e), dtype=like.dtype, device=like.device) for e in r]
        for r in rows
    ]
    return torch.stack([torch.stack(r, dim=-1) for r in cols], dim=-2)


def translate_matrix(tx: Tensor, ty: Tensor) -> Tensor:
    """[N,3,3] translation by (tx, ty) pixels."""
    return _stack_matrices([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def scale_matrix(sx: Tensor, sy: Tensor) -> Tensor:
    """[N,3,3] scale about the origin."""
    return _stack_matrices([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def rotate_matrix(theta: Tensor) -> Tensor:
    """[N,3,3] rotation about the origin by ``theta`` radians (clockwise on screen, since y points down)."""
    c, s = torch.cos(theta), torch.sin(theta)
    return _stack_matrices([[c, -s, 0], [s, c, 0], [0, 0, 1]], theta)


def rotate90_matrix(k: Tensor) -> Tensor:
    """[N,3,3] rotation by ``k`` quarter turns, exact (cos/sin from a table: trig of pi/2 is not exactly 0)."""
    k = k.long() % 4
    cos = torch.tensor([1.0, 0.0, -1.0, 0.0], dtype=torch.float64, device=k.device)[k]
    sin = torch.tensor([0.0, 1.0, 0.0, -1.0], dtype=torch.float64, device=k.device)[k]
    return _stack_matrices([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]], cos)


def centered_to_pixel(matrix: Tensor, height: int, width: int) -> Tensor:
    """Re-express centred-origin matrices [N,3,3] for pixel-index coordinates (pixel (0, 0) at the origin)."""
    cx, cy = (width - 1) / 2, (height - 1) / 2
    to_center = torch.tensor([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], dtype=matrix.dtype, device=matrix.device)
    from_center = torch.tensor([[1, 0, cx], [0, 1, cy], [0, 0, 1]], dtype=matrix.dtype, device=matrix.device)
    return from_center @ matrix @ to_center


def is_identity(matrix: Tensor, atol: float = _IDENTITY_ATOL) -> Tensor:
    """[N] bool: which square matrices [N,K,K] are the identity."""
    eye = torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device)
    return ((matrix - eye).abs() <= atol).flatten(1).all(dim=1)


def is_blit(matrix_px: Tensor, atol: float = _BLIT_ATOL) -> Tensor:
    """[N] bool: which pixel-coordinate matrices map the pixel grid onto itself (integer entries, affine last row).
    Such transforms are pure pixel permutations (plus reflection at the border) and need no interpolation."""
    integer = ((matrix_px - matrix_px.round()).abs() <= atol).flatten(1).all(dim=1)
    last = matrix_px[:, 2].new_tensor([0.0, 0.0, 1.0])
    return integer & ((matrix_px[:, 2] - last).abs() <= atol).all(dim=1)


# ----------------------------------------------------------------------------------------------------------------------
# Colour matrices: [N,4,4] on homogeneous RGB.

_LUMA = torch.full((3,), 1.0 / math.sqrt(3.0), dtype=torch.float64)  # luma axis (1,1,1)/sqrt(3)


def _embed3(m3: Tensor) -> Tensor:
    """[N,4,4] from linear parts [N,3,3]."""
    out = torch.zeros(m3.shape[0], 4, 4, dtype=m3.dtype, device=m3.device)
    out[:, :3, :3] = m3
    out[:, 3, 3] = 1
    return out


def _luma_projector(like: Tensor) -> Tensor:
    v = _LUMA.to(dtype=like.dtype, device=like.device)
    return torch.outer(v, v)


def color_translate_matrix(b: Tensor) -> Tensor:
    """[N,4,4] adding ``b`` to every channel (brightness)."""
    out = _embed3(torch.eye(3, dtype=b.dtype, device=b.device).expand(b.shape[0], 3, 3))
    out[:, :3, 3] = b[:, None]
    return out


def color_scale_matrix(s: Tensor) -> Tensor:
    """[N,4,4] scaling every channel by ``s`` about 0 (contrast; 0 is mid grey in the [-1, 1] range)."""
    return _embed3(torch.eye(3, dtype=s.dtype, device=s.device) * s[:, None, None])


def luma_flip_matrix(flip: Tensor) -> Tensor:
    """[N,4,4] Householder reflection across the plane orthogonal to the luma axis where ``flip`` is 1 (identity
    where 0): negates luma, keeps chroma."""
    flip = flip.to(torch.float64)
    eye = torch.eye(3, dtype=flip.dtype, device=flip.device)
    return _embed3(eye - 2 * _luma_projector(flip) * flip[:, None, None])


def hue_rotation_matrix(theta: Tensor) -> Tensor:
    """[N,4,4] rotation by ``theta`` radians about the luma axis (Rodrigues), which keeps luma and saturation."""
    cross = torch.tensor([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], dtype=theta.dtype, device=theta.device) / math.sqrt(3)
    vv = _luma_projector(theta)  # cross is [v]_x, the cross-product matrix of the luma axis v
    c, s = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
    return _embed3(vv + c * (torch.eye(3, dtype=theta.dtype, device=theta.device) - vv) + s * cross)


def saturation_matrix(s: Tensor) -> Tensor:
    """[N,4,4] scaling the chroma (the component orthogonal to luma) by ``s``; luma is kept."""
    vv = _luma_projector(s)
    eye = torch.eye(3, dtype=s.dtype, device=s.device)
    return _embed3(vv + (eye - vv) * s[:, None, None])


def apply_color_matrices(images: Tensor, matrix: Tensor) -> Tensor:
    """Apply [N,4,4] colour matrices to [N,3,H,W] images.

    Written as per-channel multiply-adds rather than a matmul so the result is plain fp32 arithmetic on every
    backend (no TF32) and identity rows give back the input bit-exactly."""
    if images.shape[1] != 3:
        raise ValueError(f"colour matrices need 3 channels, got {images.shape[1]}")
    m = matrix.to(device=images.device, dtype=images.dtype)[:, :3, :, None, None]  # [N,3,4,1,1]
    r, g, b = images[:, 0:1], images[:, 1:2], images[:, 2:3]  # [N,1,H,W]
    return m[:, :, 0] * r + m[:, :, 1] * g + m[:, :, 2] * b + m[:, :, 3]


# ----------------------------------------------------------------------------------------------------------------------
# Geometric application.


def reflect_index(index: Tensor, size: int) -> Tensor:
    """Map pixel indices (integer or real) onto ``[0, size-1]`` by mirroring about the first and last pixel centre
    (edge not repeated, like ``F.pad(mode="reflect")``), for any distance outside the range."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    i = torch.remainder(index, period)
    return torch.where(i > size - 1, period - i, i)


def reflect_pad(images: Tensor, left: int, right: int, top: int, bottom: int) -> Tensor:
    """Reflect-pad [N,C,H,W] by any amounts (``F.pad`` only allows pads smaller than the image)."""
    h, w = images.shape[-2:]
    rows = reflect_index(torch.arange(-top, h + bottom, device=images.device), h)
    cols = reflect_index(torch.arange(-left, w + right, device=images.device), w)
    return images.index_select(-2, rows).index_select(-1, cols)


def blit(images: Tensor, matrix_px: Tensor) -> Tensor:
    """Exact remap of [N,C,H,W] by integer pixel-coordinate matrices [N,3,3] (see ``is_blit``): output pixel (x, y)
    takes input pixel ``matrix @ (x, y, 1)``, reflected into the image. A gather, so gradients pass unchanged."""
    n, c, h, w = images.shape
    m = matrix_px.round().to(device=images.device, dtype=torch.long)
    ys, xs = torch.meshgrid(
        torch.arange(h, device=images.device), torch.arange(w, device=images.device), indexing="ij"
    )  # [H,W]
    src_x = m[:, 0, 0, None, None] * xs + m[:, 0, 1, None, None] * ys + m[:, 0, 2, None, None]
    src_y = m[:, 1, 0, None, None] * xs + m[:, 1, 1, None, None] * ys + m[:, 1, 2, None, None]
    flat = reflect_index(src_y, h) * w + reflect_index(src_x, w)  # [N,H,W]
    index = flat.reshape(n, 1, h * w).expand(n, c, h * w)
    return images.reshape(n, c, h * w).gather(2, index).reshape(n, c, h, w)


@functools.cache
def orthogonal_lowpass(vanishing_moments: int = 6) -> tuple[float, ...]:
    """Least-asymmetric orthogonal Daubechies low-pass (a symlet) with ``2 * vanishing_moments`` taps, normalised
    to sum 1 (so ``sum_t h[t] h[t + 2j] = delta_j / 2``).

    Spectral factorisation: |H(w)|^2 = cos^(2N)(w/2) P(sin^2(w/2)) with P(y) = sum_k C(N-1+k, k) y^k. Each root y of
    P gives a reciprocal pair z, 1/z (z^2 - (2 - 4y) z + 1 = 0), of which H keeps one (conjugate roots together, so
    H is real). Of those choices we keep the one whose phase is closest to linear; of a mirror pair, the one with
    its weight towards the end (for N = 6 that is the usual sym6 reconstruction filter)."""
    n = int(vanishing_moments)
    if n < 2:
        raise ValueError("need at least 2 vanishing moments (linear functions must pass the 2x up/down exactly)")
    y_roots = np.roots([math.comb(n - 1 + k, k) for k in range(n)][::-1])
    groups: list[tuple[list[complex], list[complex]]] = []
    for y in y_roots:
        if y.imag < -1e-9:
            continue  # its conjugate carries the pair
        b = 2 - 4 * y
        disc = np.sqrt(b * b - 4 + 0j)
        z1, z2 = (b + disc) / 2, (b - disc) / 2
        if abs(y.imag) <= 1e-9:
            groups.append(([z1], [z2]))
        else:
            groups.append(([z1, np.conj(z1)], [z2, np.conj(z2)]))
    w = np.linspace(0.0, np.pi, 513)[1:-1]
    candidates = []
    for choice in itertools.product((0, 1), repeat=len(groups)):
        q = np.array([1.0 + 0j])
        for group, c in zip(groups, choice):
            for r in group[c]:
                q = np.convolve(q, [1.0, -r])
        # Phase of the non-(1 + 1/z) factor; the (1 + 1/z)^N part is linear phase already.
        phase = np.unwrap(np.angle(np.polyval(q[::-1], np.exp(-1j * w)))) - np.angle(q.sum())
        slope = (phase @ w) / (w @ w)
        nonlinearity = float(np.max(np.abs(phase - slope * w)))
        h = q
        for _ in range(n):
            h = np.convolve(h, [1.0, 1.0])
        h = h.real / h.real.sum()
        candidates.append((nonlinearity, float(np.arange(h.size) @ h), h))
    best = min(c[0] for c in candidates)
    near = [c for c in candidates if c[0] <= best + 1e-6]
    return tuple(float(t) for t in max(near, key=lambda c: c[1])[2])


def _fir_up2(x: Tensor, taps: Tensor, dim: int) -> Tensor:
    """2x synthesis along ``dim`` (-1 or -2) of [B,1,H,W]: y[n] = sum_k x[k] * 2 h[n - 2k], length 2K + L - 2.

    Polyphase: the even and odd outputs are two ordinary convolutions with the even and odd taps, interleaved
    (on CPU much faster than ``conv_transpose2d`` or zero-stuffing)."""
    length = taps.numel()
    phases = torch.stack([2 * taps[0::2].flip(0), 2 * taps[1::2].flip(0)])  # [2, L/2]
    b, _, h, w = x.shape
    if dim == -1:
        y = F.conv2d(x, phases.view(2, 1, 1, -1), padding=(0, length // 2 - 1))  # [B,2,H,K+L/2-1]
        return y.permute(0, 2, 3, 1).reshape(b, 1, h, -1)
    y = F.conv2d(x, phases.view(2, 1, -1, 1), padding=(length // 2 - 1, 0))  # [B,2,K+L/2-1,W]
    return y.permute(0, 3, 2, 1).reshape(b, 1, w, -1).transpose(-1, -2)


def _fir_down2(x: Tensor, taps: Tensor, dim: int) -> Tensor:
    """2x analysis along ``dim`` of [B,1,H,W]: y[m] = sum_t x[2m + t] h[t] (valid part only)."""
    weight = taps.view(1, 1, -1, 1) if dim == -2 else taps.view(1, 1, 1, -1)
    stride = (2, 1) if dim == -2 else (1, 2)
    return F.conv2d(x, weight, stride=stride)


def bilinear_reflect(images: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Bilinear samples of [N,C,H,W] at pixel coordinates ``x``, ``y`` [N,H',W'], mirrored at the borders:
    ``F.grid_sample(mode="bilinear", padding_mode="reflection", align_corners=True)`` as gathers. Written out
    because CUDA has no double backward for grid_sample, and R1 differentiates D's input gradient through this
    (StyleGAN2-ADA patches grid_sample for the same reason). The coordinates take no gradient."""
    n, c, h, w = images.shape
    x, y = reflect_index(x.detach(), w), reflect_index(y.detach(), h)
    x0, y0 = x.floor().clamp(0, w - 1), y.floor().clamp(0, h - 1)
    fx, fy = (x - x0).to(images.dtype), (y - y0).to(images.dtype)
    x0, y0 = x0.long(), y0.long()
    x1, y1 = (x0 + 1).clamp(max=w - 1), (y0 + 1).clamp(max=h - 1)
    flat = images.reshape(n, c, h * w)

    def tap(yi: Tensor, xi: Tensor) -> Tensor:
        idx = (yi * w + xi).reshape(n, 1, -1).expand(n, c, -1)
        return flat.gather(2, idx).reshape(n, c, *x.shape[1:])

    fx, fy = fx[:, None], fy[:, None]
    top = tap(y0, x0) * (1 - fx) + tap(y0, x1) * fx
    bottom = tap(y1, x0) * (1 - fx) + tap(y1, x1) * fx
    return top * (1 - fy) + bottom * fy


def resample(images: Tensor, matrix_px: Tensor, vanishing_moments: int = 6) -> Tensor:
    """Anti-aliased affine resample of [N,C,H,W] by pixel-coordinate matrices [N,3,3] (output -> input).

    Coordinates, per axis, for a filter h of length L with centre of mass d (taps sum to 1): after reflect-padding
    by ``lo`` pixels and 2x synthesis, upsampled sample n sits at input pixel (n - d) / 2 - lo (exact for linear
    content, since the filter has >= 2 vanishing moments). The output is produced on the 2x grid at output
    positions (n - d) / 2, n = 0 .. 2S + L - 3, and decimated by the analysis filter, so with an identity matrix the
    chain is the identity (perfect reconstruction). The pads are sized from where the batch's output corners land,
    capped at the image size per side to bound memory; samples beyond that reflect about the valid region.
    The FIR steps are convolutions, so on CUDA they follow the global cuDNN TF32 setting (about 1e-3 relative)."""
    n, c, h, w = images.shape
    taps_np = orthogonal_lowpass(vanishing_moments)
    length = len(taps_np)  # even, as the polyphase upsampler assumes
    d = float(np.arange(length) @ np.asarray(taps_np))
    taps = torch.tensor(taps_np, dtype=images.dtype, device=images.device)
    m64 = matrix_px.detach().to(device="cpu", dtype=torch.float64)

    # Input extent the output grid reaches, per axis, over the batch.
    lo_x, hi_x = -d / 2, (2 * w + length - 3 - d) / 2
    lo_y, hi_y = -d / 2, (2 * h + length - 3 - d) / 2
    corners = torch.tensor([[lo_x, lo_y, 1], [hi_x, lo_y, 1], [lo_x, hi_y, 1], [hi_x, hi_y, 1]], dtype=torch.float64)
    src = torch.einsum("nij,kj->nki", m64, corners)  # [N,4,3]
    sx_min, sx_max = src[..., 0].min().item(), src[..., 0].max().item()
    sy_min, sy_max = src[..., 1].min().item(), src[..., 1].max().item()

    def pads(s_min: float, s_max: float, size: int) -> tuple[int, int]:
        # Valid (fully summed) upsampled samples are n in [L-1, 2 * padded - 1]; bilinear reads floor and ceil.
        before = math.ceil((length - 1 - d) / 2 - s_min) + 1
        after = math.ceil(s_max + (d + 1) / 2 - size) + 1
        before, after = min(max(before, 0), size), min(max(after, 0), size)
        grow = max(0, math.ceil((length + 1) / 2) - (size + before + after))  # keep >= 2 valid samples
        return before, after + grow

    left, right = pads(sx_min, sx_max, w)
    top, bottom = pads(sy_min, sy_max, h)
    x = reflect_pad(images, left, right, top, bottom).reshape(n * c, 1, h + top + bottom, w + left + right)
    x = _fir_up2(_fir_up2(x, taps, -2), taps, -1)
    valid_h, valid_w = 2 * (h + top + bottom) - length + 1, 2 * (w + left + right) - length + 1
    x = x[..., length - 1 : length - 1 + valid_h, length - 1 : length - 1 + valid_w].reshape(n, c, valid_h, valid_w)

    m = matrix_px.to(device=images.device, dtype=images.dtype)
    xo = (torch.arange(2 * w + length - 2, device=images.device, dtype=images.dtype) - d) / 2
    yo = (torch.arange(2 * h + length - 2, device=images.device, dtype=images.dtype) - d) / 2
    xo, yo = xo[None, None, :], yo[None, :, None]
    sx = m[:, 0, 0, None, None] * xo + m[:, 0, 1, None, None] * yo + m[:, 0, 2, None, None]  # [N,H',W']
    sy = m[:, 1, 0, None, None] * xo + m[:, 1, 1, None, None] * yo + m[:, 1, 2, None, None]
    x = bilinear_reflect(x, 2 * (sx + left) + d - (length - 1), 2 * (sy + top) + d - (length - 1))

    x = x.reshape(n * c, 1, *x.shape[-2:])
    x = _fir_down2(_fir_down2(x, taps, -2), taps, -1)
    return x.reshape(n, c, h, w)


def apply_geometric_matrices(images: Tensor, matrix_px: Tensor) -> Tensor:
    """Apply pixel-coordinate matrices [N,3,3] (output -> input) to [N,C,H,W]: identity images are returned as
    they are, integer matrices by an exact ``blit``, the rest by one anti-aliased ``resample``."""
    m64 = matrix_px.detach().to(device="cpu", dtype=torch.float64)
    identity = is_identity(m64)
    exact = is_blit(m64) & ~identity
    other = ~identity & ~exact
    out = images
    for mask, fn in ((exact, blit), (other, resample)):
        if mask.any():
            idx = mask.nonzero().squeeze(1)
            dev_idx = idx.to(images.device)
            out = out.index_copy(0, dev_idx, fn(images.index_select(0, dev_idx), m64[idx]))
    return out


# ----------------------------------------------------------------------------------------------------------------------
# Random parameters.


class _Draw:
    """Random draws for one batch, from ``generator`` (on its device) or torch's global CPU RNG, returned as float64
    on the CPU. Every draw happens whether or not its op is enabled, so one op's setting does not shift the
    others' random numbers."""

    def __init__(self, n: int, generator: torch.Generator | None) -> None:
        self.n, self.generator = n, generator
        self.device = generator.device if generator is not None else torch.device("cpu")

    def uniform(self, *shape: int) -> Tensor:
        return torch.rand(self.n, *shape, generator=self.generator, device=self.device, dtype=torch.float64).cpu()

    def normal(self, *shape: int) -> Tensor:
        return torch.randn(self.n, *shape, generator=self.generator, device=self.device, dtype=torch.float64).cpu()

    def integer(self, high: int) -> Tensor:
        return torch.randint(high, (self.n,), generator=self.generator, device=self.device).cpu()

    def fires(self, prob: float) -> Tensor:
        return self.uniform() < prob


def _probs(p: float, multipliers: dict[str, float]) -> dict[str, float]:
    return {op: min(max(p * float(multipliers.get(op, 1.0)), 0.0), 1.0) for op in OPS}


def sample_geometric_matrices(
    n: int,
    height: int,
    width: int,
    p: float,
    multipliers: dict[str, float] | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """[N,3,3] float64 CPU centred-origin matrices (output -> input, pixels) of the bgc blit and geom groups.

    Each op fires per image with probability ``p * multiplier`` (clamped to [0, 1]); the two arbitrary rotations
    each fire with ``1 - sqrt(1 - p_rotate)`` so that some rotation happens with ``p_rotate``. Each factor is the
    inverse of its op (distributions are symmetric, so this only matters for the order)."""
    pr = _probs(p, multipliers or {})
    draw = _Draw(n, generator)
    size = torch.tensor([width, height], dtype=torch.float64)
    g = torch.eye(3, dtype=torch.float64).repeat(n, 1, 1)
    one = torch.ones(n, dtype=torch.float64)

    fire = draw.fires(pr["xflip"])
    flip = (fire & (draw.integer(2) == 1)).to(torch.float64)  # fires with p, then a fair coin
    g = g @ scale_matrix(1 - 2 * flip, one)

    fire = draw.fires(pr["rotate90"])
    g = g @ rotate90_matrix(-draw.integer(4) * fire)

    fire = draw.fires(pr["xint"])
    t = torch.round((draw.uniform(2) * 2 - 1) * XINT_MAX * size) * fire[:, None]  # whole pixels: stays a blit
    g = g @ translate_matrix(-t[:, 0], -t[:, 1])

    fire = draw.fires(pr["scale"])
    s = torch.where(fire, torch.exp2(draw.normal() * SCALE_STD), one)
    g = g @ scale_matrix(1 / s, 1 / s)

    p_rot = 1 - math.sqrt(max(0.0, 1 - pr["rotate"]))
    fire = draw.fires(p_rot)
    theta = (draw.uniform() * 2 - 1) * math.pi * ROTATE_MAX * fire
    g = g @ rotate_matrix(-theta)

    fire = draw.fires(pr["aniso"])
    s = torch.where(fire, torch.exp2(draw.normal() * ANISO_STD), one)
    g = g @ scale_matrix(1 / s, s)

    fire = draw.fires(p_rot)
    theta = (draw.uniform() * 2 - 1) * math.pi * ROTATE_MAX * fire
    g = g @ rotate_matrix(-theta)

    fire = draw.fires(pr["xfrac"])
    t = draw.normal(2) * XFRAC_STD * size * fire[:, None]
    return g @ translate_matrix(-t[:, 0], -t[:, 1])


def sample_color_matrices(
    n: int, p: float, multipliers: dict[str, float] | None = None, generator: torch.Generator | None = None
) -> Tensor:
    """[N,4,4] float64 CPU colour matrices of the bgc colour group (brightness, contrast, luma flip, hue,
    saturation, in that order), each op firing per image with probability ``p * multiplier``."""
    pr = _probs(p, multipliers or {})
    draw = _Draw(n, generator)
    c = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)
    one = torch.ones(n, dtype=torch.float64)

    fire = draw.fires(pr["brightness"])
    c = color_translate_matrix(draw.normal() * BRIGHTNESS_STD * fire) @ c

    fire = draw.fires(pr["contrast"])
    c = color_scale_matrix(torch.where(fire, torch.exp2(draw.normal() * CONTRAST_STD), one)) @ c

    fire = draw.fires(pr["lumaflip"])
    c = luma_flip_matrix(fire & (draw.integer(2) == 1)) @ c

    fire = draw.fires(pr["hue"])
    c = hue_rotation_matrix((draw.uniform() * 2 - 1) * math.pi * HUE_MAX * fire) @ c

    fire = draw.fires(pr["saturation"])
    return saturation_matrix(torch.where(fire, torch.exp2(draw.normal() * SATURATION_STD), one)) @ c


# ----------------------------------------------------------------------------------------------------------------------
# Modules.


class AugmentPipe(nn.Module):
    """bgc pipeline; every op fires per image with probability p.

    ``p`` is a float32 scalar buffer (saved in ``state_dict``, moved by ``.to()``); set it with ``set_p`` or let an
    ``AdaController`` drive it. The keyword multipliers, one per name in ``OPS`` (default 1), scale ``p`` per op
    (0 disables an op). A fixed-strength pipe is just ``AugmentPipe(p=0.2)``.

    ``forward`` runs in fp32 with autocast off and returns the input's dtype; it is differentiable w.r.t. the images
    (twice, for R1 through the pipe). At ``p == 0`` it returns its input object unchanged. Colour ops need 3
    channels and are skipped for other channel counts."""

    p: Tensor

    def __init__(self, p: float = 0.0, **multipliers: float) -> None:
        super().__init__()
        unknown = sorted(set(multipliers) - set(OPS))
        if unknown:
            raise TypeError(f"AugmentPipe: unknown op(s) {', '.join(unknown)}; ops are {', '.join(OPS)}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.register_buffer("p", torch.tensor(float(p), dtype=torch.float32))
        self.multipliers: dict[str, float] = {op: float(multipliers.get(op, 1)) for op in OPS}
        if any(v < 0 for v in self.multipliers.values()):
            raise ValueError("multipliers must be >= 0")

    def set_p(self, p: float) -> None:
        """Set the strength in place (keeps the buffer's device)."""
        with torch.no_grad():
            self.p.fill_(min(max(float(p), 0.0), 1.0))

    def extra_repr(self) -> str:
        changed = {k: v for k, v in self.multipliers.items() if v != 1.0}
        return f"p={float(self.p):.4g}" + "".join(f", {k}={v:g}" for k, v in changed.items())

    def forward(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if images.ndim != 4:
            raise ValueError(f"expected [N,C,H,W] images, got shape {tuple(images.shape)}")
        p = float(self.p)
        if p <= 0.0:
            return images
        n, c, h, w = images.shape
        with torch.autocast(device_type=images.device.type, enabled=False):
            x = images.float()
            # Parameters are drawn even for ops that end up identity, so the stream of random numbers per call
            # does not depend on the image content or the multipliers.
            geom = centered_to_pixel(sample_geometric_matrices(n, h, w, p, self.multipliers, generator), h, w)
            color = sample_color_matrices(n, p, self.multipliers, generator)
            x = apply_geometric_matrices(x, geom)
            changed = ~is_identity(color)
            if c == 3 and bool(changed.any()):
                # Only images whose colour changes: untouched ones stay bit-exact (a composed identity may be
                # off by an ulp).
                idx = changed.nonzero().squeeze(1)
                dev_idx = idx.to(x.device)
                x = x.index_copy(0, dev_idx, apply_color_matrices(x.index_select(0, dev_idx), color[idx]))
        return x.to(images.dtype)


class AdaController:
    """r_t = E[sign(D(real))] over the reals of the last ``interval`` minibatches; every ``interval`` minibatches
    p <- clamp(p + sign(r_t - target) * batch * interval / (kimg * 1000), 0, 1).

    ``accumulate`` keeps the sign sum on the logits' device, so it does not synchronise; ``step`` reads it once per
    adjustment. The pipe's ``p`` buffer is the single source of truth for p (changes made to it are respected)."""

    def __init__(
        self, pipe: AugmentPipe, target: float = 0.6, interval: int = 4, kimg: float = 500.0, batch: int = 32
    ) -> None:
        if interval < 1 or batch < 1 or kimg <= 0:
            raise ValueError("interval and batch must be >= 1 and kimg > 0")
        self.pipe = pipe
        self.target = float(target)
        self.interval = int(interval)
        self.kimg = float(kimg)
        self.batch = int(batch)
        self._sign_sum = 0.0  # sum of sign(logit) over the current window (an integer, exact in a float)
        self._count = 0  # logits in the current window
        self._calls = 0  # step() calls so far
        self._pending: Tensor | None = None  # device-side part of _sign_sum not yet read back

    @property
    def adjustment(self) -> float:
        """Size of one p step."""
        return self.batch * self.interval / (self.kimg * 1000.0)

    def accumulate(self, real_logits: Tensor) -> None:
        """Add D's logits on the (augmented) reals of one D step."""
        s = torch.sign(real_logits.detach().float()).sum()
        self._pending = s if self._pending is None else self._pending + s
        self._count += real_logits.numel()

    def _flush(self) -> None:
        if self._pending is not None:
            self._sign_sum += float(self._pending)
            self._pending = None

    def step(self) -> dict[str, float] | None:
        """Count one minibatch; every ``interval``-th call adjusts p and returns ``{"ada_p", "ada_rt"}``. A window
        without any accumulated logits leaves p alone (returns None)."""
        self._calls += 1
        if self._calls % self.interval:
            return None
        self._flush()
        count, sign_sum = self._count, self._sign_sum
        self._sign_sum, self._count = 0.0, 0
        if count == 0:
            return None
        rt = sign_sum / count
        direction = (rt > self.target) - (rt < self.target)
        self.pipe.set_p(float(self.pipe.p) + direction * self.adjustment)
        return {"ada_p": float(self.pipe.p), "ada_rt": rt}

    def state_dict(self) -> dict:
        """Plain JSON-able state for exact resume, including p (``load_state_dict`` writes it into the pipe)."""
        self._flush()
        return {"p": float(self.pipe.p), "sign_sum": self._sign_sum, "count": self._count, "calls": self._calls}

    def load_state_dict(self, d: dict) -> None:
        self._pending = None
        self._sign_sum = float(d["sign_sum"])
        self._count = int(d["count"])
        self._calls = int(d["calls"])
        self.pipe.set_p(float(d["p"]))
