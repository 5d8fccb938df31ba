"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"): the same random,
differentiable transforms applied to every image the discriminator sees, real and generated, in D's step and in
G's, so D cannot memorise the few real images and G's gradient passes through the transform.

The three ops of the paper's default policy ``color,translation,cutout``, with the paper's magnitudes:

- ``color``: brightness (add a uniform value in [-0.5, 0.5]), then saturation (scale each pixel's deviation from
  its channel mean by a uniform factor in [0, 2]), then contrast (scale each image's deviation from its mean by a
  uniform factor in [0.5, 1.5]);
- ``translation``: shift by a whole number of pixels, uniform in [-1/8, 1/8] of the side on each axis, zeros shifted
  in;
- ``cutout``: set a square of half the side to zero, centred at a uniformly drawn pixel (the border may cut it).

Every op fires on every image (the paper's DiffAugment has no probability p). Written for fixed shapes and no host
round trips: one ``[N, 7]`` uniform draw per call on the images' device, then gathers, masks and arithmetic on the
whole batch, so a CUDA step never waits for the host. Differentiable w.r.t. the images twice (R1 through D's input
path). Images are ``[N, C, H, W]`` in about [-1, 1] (0 = mid grey, which is what translation and cutout fill in).
The functions taking explicit parameters are pure; ``diff_augment`` draws the parameters and applies a policy.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "DIFFAUG_OPS",
    "DIFFAUG_PARAMS",
    "TRANSLATION_RATIO",
    "CUTOUT_RATIO",
    "apply_diff_augment",
    "brightness",
    "contrast",
    "cutout",
    "diff_augment",
    "parse_policy",
    "sample_params",
    "saturation",
    "translate",
]

DIFFAUG_OPS = ("color", "translation", "cutout")  # applied in this order, whatever order the policy names them
TRANSLATION_RATIO = 0.125  # Zhao et al.: shift within [-1/8, 1/8] of the image size
CUTOUT_RATIO = 0.5  # Zhao et al.: a square of half the image size
# columns of the [N, 7] uniform draw; every column is drawn whatever the policy, so one op's setting does not
# shift the random numbers of the others
DIFFAUG_PARAMS = ("brightness", "saturation", "contrast", "translate_x", "translate_y", "cutout_x", "cutout_y")


def parse_policy(policy: str | Sequence[str]) -> tuple[str, ...]:
    """The ops of a policy (``"color,translation,cutout"``, a sequence, or ``""`` / ``"none"`` for none), in the
    order they are applied; ValueError naming an unknown op."""
    names = [p.strip() for p in policy.split(",")] if isinstance(policy, str) else [str(p).strip() for p in policy]
    names = [p for p in names if p and p != "none"]
    unknown = sorted(set(names) - set(DIFFAUG_OPS))
    if unknown:
        raise ValueError(f"DiffAugment policy: unknown op(s) {', '.join(unknown)}; ops are {', '.join(DIFFAUG_OPS)}")
    return tuple(op for op in DIFFAUG_OPS if op in names)


def sample_params(n: int, device: torch.device | str, generator: torch.Generator | None = None) -> Tensor:
    """``[n, 7]`` float32 uniforms in [0, 1) (columns: ``DIFFAUG_PARAMS``), drawn on ``device`` from
    ``generator`` (which must live there) or the device's default generator."""
    return torch.rand(n, len(DIFFAUG_PARAMS), generator=generator, device=device, dtype=torch.float32)


# --- the ops, with explicit per-image parameters ([N] tensors) -------------------------------------------------------


def brightness(x: Tensor, shift: Tensor) -> Tensor:
    """``x + shift`` per image (``shift`` [N]; DiffAugment draws it uniform in [-0.5, 0.5])."""
    return x + shift.to(x.dtype).view(-1, 1, 1, 1)


def saturation(x: Tensor, factor: Tensor) -> Tensor:
    """Each pixel's deviation from its mean over the channels, scaled by ``factor`` per image (uniform in [0, 2]):
    0 gives grey, 1 the image."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * factor.to(x.dtype).view(-1, 1, 1, 1) + mean


def contrast(x: Tensor, factor: Tensor) -> Tensor:
    """Each image's deviation from its mean (over channels and pixels) scaled by ``factor`` (uniform in
    [0.5, 1.5])."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * factor.to(x.dtype).view(-1, 1, 1, 1) + mean


def translate(x: Tensor, dx: Tensor, dy: Tensor) -> Tensor:
    """Shift each image by whole pixels (``dx``, ``dy`` [N] integer-valued; + = right / down); pixels shifted in
    are 0. Output pixel (y, x) takes input pixel (y - dy, x - dx): two gathers and a mask, so gradients pass to
    the moved pixels unchanged and are 0 for what fell off the image."""
    n, c, h, w = x.shape
    rows = torch.arange(h, device=x.device)[None, :] - dy.to(x.device).long()[:, None]  # [N,H] source rows
    cols = torch.arange(w, device=x.device)[None, :] - dx.to(x.device).long()[:, None]  # [N,W] source columns
    keep_r = ((rows >= 0) & (rows < h)).to(x.dtype)
    keep_c = ((cols >= 0) & (cols < w)).to(x.dtype)
    x = x.gather(2, rows.clamp(0, h - 1)[:, None, :, None].expand(n, c, h, w))
    x = x.gather(3, cols.clamp(0, w - 1)[:, None, None, :].expand(n, c, h, w))
    return x * keep_r[:, None, :, None] * keep_c[:, None, None, :]


def cutout(x: Tensor, cx: Tensor, cy: Tensor, size: tuple[int, int]) -> Tensor:
    """Zero a ``size`` = (height, width) rectangle per image whose top-left pixel is (``cy`` - height // 2,
    ``cx`` - width // 2) (``cx``, ``cy`` [N] integer-valued centres); what lies outside the image is ignored."""
    n, _, h, w = x.shape
    sh, sw = size
    top = cy.to(x.device).long()[:, None] - sh // 2
    left = cx.to(x.device).long()[:, None] - sw // 2
    r = torch.arange(h, device=x.device)[None, :]
    c = torch.arange(w, device=x.device)[None, :]
    in_r = (r >= top) & (r < top + sh)  # [N,H]
    in_c = (c >= left) & (c < left + sw)  # [N,W]
    hole = in_r[:, None, :, None] & in_c[:, None, None, :]  # [N,1,H,W]
    return x * (~hole).to(x.dtype)


# --- the policy ---------------------------------------------------------------------------------------------------


def _whole(u: Tensor, lo: int, hi: int) -> Tensor:
    """Uniforms in [0, 1) -> integers uniform in [lo, hi] (as float)."""
    return (u * (hi - lo + 1)).floor().clamp(max=hi - lo) + lo


def apply_diff_augment(x: Tensor, params: Tensor, policy: str | Sequence[str]) -> Tensor:
    """``policy`` applied to ``x`` [N, C, H, W] with the uniforms ``params`` [N, 7] of :func:`sample_params`;
    computed in fp32 (fp64 for fp64 input; autocast off), returned in ``x``'s dtype. An empty policy returns ``x``
    itself."""
    ops = parse_policy(policy)
    if not ops:
        return x
    if x.ndim != 4:
        raise ValueError(f"DiffAugment: expected [N,C,H,W] images, got shape {tuple(x.shape)}")
    n, _, h, w = x.shape
    if params.shape != (n, len(DIFFAUG_PARAMS)):
        raise ValueError(f"DiffAugment: params {tuple(params.shape)} for {n} images (expected [{n}, 7])")
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    u = params.to(device=x.device, dtype=work)
    with torch.autocast(device_type=x.device.type, enabled=False):
        y = x.to(work)
        if "color" in ops:
            y = brightness(y, u[:, 0] - 0.5)
            y = saturation(y, u[:, 1] * 2)
            y = contrast(y, u[:, 2] + 0.5)
        if "translation" in ops:
            sx, sy = int(w * TRANSLATION_RATIO + 0.5), int(h * TRANSLATION_RATIO + 0.5)
            y = translate(y, _whole(u[:, 3], -sx, sx), _whole(u[:, 4], -sy, sy))
        if "cutout" in ops:
            size = (int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5))
            y = cutout(y, _whole(u[:, 5], 0, w - 1), _whole(u[:, 6], 0, h - 1), size)
    return y.to(x.dtype)


def diff_augment(
    x: Tensor, policy: str | Sequence[str], generator: torch.Generator | None = None, params: Tensor | None = None
) -> Tensor:
    """DiffAugment ``policy`` on ``x`` [N, C, H, W]: fresh parameters from ``generator`` (on ``x``'s device)
    unless ``params`` [N, 7] are given."""
    if not parse_policy(policy):
        return x
    if params is None:
        params = sample_params(x.shape[0], x.device, generator)
    return apply_diff_augment(x, params, policy)
