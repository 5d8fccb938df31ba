"""Training losses: small pure functions on NCHW float tensors (images in [0, 1], masks (B, 1, H, W)).

The reconstruction recipe follows DeepFaceLab's SAEHD (DSSIM at one or two window sizes + MSE + mask MSE, optional
eyes/mouth priority, masked training on a soft-dilated mask); see the reference notes, section 4.

**Reduction.** Every loss here returns one value per sample (shape ``[B]``), except the GAN and the face/background
style losses, which return the weighted batch mean directly (they are only ever used that way). The trainer averages
per-sample totals over the batch. DFL instead differentiates the ``[B]`` vector, which *sums* over the batch, so
DFL's gradient is B times ours. That does not change the step of an Adam-family optimiser (AdaBelief, RMSprop):
multiplying the loss by a constant c multiplies the gradient g, the first moment m and sqrt(second moment) all by c,
and the update m / (sqrt(s) + eps) is unchanged except for eps, which is not scaled: our update with eps equals
DFL's with eps·B (negligible while sqrt(s) >> eps). So DFL's lr 5e-5 remains our default at any batch size. To
reproduce DFL exactly, sum over the batch instead of averaging (or use eps/B). Gradient-norm clipping does see the
factor: our gradient norm is 1/B of DFL's, so a clip at 1.0 triggers less often than DFL's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

# --- Gaussian filtering ----------------------------------------------------------------------------------------------


def blur_kernel_size(sigma: float) -> int:
    """DFL's blur kernel size for ``sigma``: max(3, int(4·sigma)), made odd (the kernel spans about ±2 sigma)."""
    return max(3, int(4 * sigma)) | 1


def gaussian_kernel1d(
    size: int, sigma: float, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> Tensor:
    """Normalised 1-D Gaussian of ``size`` taps centred at (size-1)/2 (so even sizes are centred between taps, as
    DFL's SSIM windows are). The 2-D window is its outer product with itself."""
    if size < 1 or sigma <= 0:
        raise ValueError(f"gaussian kernel needs size >= 1 and sigma > 0 (got {size}, {sigma})")
    work = torch.float64 if dtype == torch.float64 else torch.float32  # build in >= fp32, then cast
    x = torch.arange(size, dtype=work, device=device) - (size - 1) / 2
    k = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return (k / k.sum()).to(dtype)


def _separable_conv(x: Tensor, k: Tensor, padding: int) -> Tensor:
    """Depthwise convolution of every channel with the outer product k ⊗ k (two 1-D passes)."""
    c, n = x.shape[1], k.numel()
    x = F.conv2d(x, k.view(1, 1, 1, n).expand(c, 1, 1, n), padding=(0, padding), groups=c)
    return F.conv2d(x, k.view(1, 1, n, 1).expand(c, 1, n, 1), padding=(padding, 0), groups=c)


def gaussian_blur(x: Tensor, sigma: float, kernel_size: int | None = None) -> Tensor:
    """Gaussian blur with zero padding and "same" output size (DFL's ``gaussian_blur``; zero padding darkens a
    border of kernel_size//2 pixels, as DFL's does). ``kernel_size`` defaults to :func:`blur_kernel_size`; it must
    be odd. ``sigma <= 0`` returns ``x`` unchanged."""
    if sigma <= 0:
        return x
    size = blur_kernel_size(sigma) if kernel_size is None else kernel_size
    if size % 2 == 0:
        raise ValueError(f"gaussian_blur needs an odd kernel size for 'same' padding (got {size})")
    k = gaussian_kernel1d(size, sigma, dtype=x.dtype, device=x.device)
    return _separable_conv(x, k, size // 2)


# --- SSIM --------------------------------------------------------------------------------------------------------------


def ssim(
    a: Tensor, b: Tensor, kernel_size: int, sigma: float = 1.5, c1: float = 0.01**2, c2: float = 0.03**2
) -> Tensor:
    """Per-sample SSIM ``[B]`` with a ``kernel_size`` Gaussian window and *valid* padding (the map is
    (H-k+1) x (W-k+1)); averaged over space per channel, then over channels. Data range 1, population
    (co)variances. Half-precision inputs are computed in float32: E[x²]-E[x]² cancels badly in bf16/fp16."""
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(f"ssim needs two NCHW tensors of the same shape (got {tuple(a.shape)}, {tuple(b.shape)})")
    if not 1 <= kernel_size <= min(a.shape[-2:]):
        raise ValueError(f"ssim kernel size {kernel_size} does not fit images of {tuple(a.shape[-2:])}")
    if a.dtype in (torch.float16, torch.bfloat16):
        a, b = a.float(), b.float()
    k = gaussian_kernel1d(kernel_size, sigma, dtype=a.dtype, device=a.device)
    # All five local moments in one depthwise pass.
    mu_a, mu_b, e_aa, e_bb, e_ab = _separable_conv(torch.cat([a, b, a * a, b * b, a * b], dim=1), k, 0).chunk(5, 1)
    mu_ab, mu_aa, mu_bb = mu_a * mu_b, mu_a * mu_a, mu_b * mu_b
    num = (2 * mu_ab + c1) * (2 * (e_ab - mu_ab) + c2)
    den = (mu_aa + mu_bb + c1) * ((e_aa - mu_aa) + (e_bb - mu_bb) + c2)
    return (num / den).mean(dim=(1, 2, 3))


def dssim(a: Tensor, b: Tensor, kernel_size: int) -> Tensor:
    """Structural dissimilarity (1 - SSIM) / 2 per sample, in [0, 1]; 0 for identical images."""
    return (1 - ssim(a, b, kernel_size)) / 2


def dssim_kernels(resolution: int) -> list[tuple[int, float]]:
    """DFL's DSSIM terms as (kernel size, weight): one window of res/11.6 below 256 px, two half-weight windows
    (res/11.6 and res/23.2) from 256 px up, so large faces are judged at a face-relative scale."""
    if resolution < 256:
        return [(int(resolution / 11.6), 10.0)]
    return [(int(resolution / 11.6), 5.0), (int(resolution / 23.2), 5.0)]


# --- masks -------------------------------------------------------------------------------------------------------------


def soft_dilate(mask: Tensor, resolution: int) -> Tensor:
    """DFL's training mask: blur with sigma max(1, res//32), clip to [0, 0.5], x2. It is 1 wherever the blur is
    >= 0.5 (the mask plus nothing, roughly) and ramps to 0 over ~2 sigma outside it, so the loss also sees a band
    of background and the network learns to blend the edge."""
    return gaussian_blur(mask, max(1, resolution // 32)).clamp(0.0, 0.5) * 2


def blur_out_mask(target: Tensor, mask: Tensor, resolution: int, *, normalize_borders: bool = False) -> Tensor:
    """Replace the background of ``target`` (where ``mask`` < 1) by a normalised-convolution inpainting from the
    background alone (sigma res/128), so face colours never bleed into the band the masked loss sees.

    DFL divides blur(t·(1-m)) by 1 - blur(m); with zero padding that darkens the image border. With
    ``normalize_borders`` the divisor is blur(1-m), which is the exact normalised convolution (identical away from
    the border). The ratio is clamped to [0, 1] (it is a weighted mean of background pixels; the clamp only catches
    rounding where both operands are tiny)."""
    sigma = resolution / 128
    inv = 1 - mask
    x = gaussian_blur(target * inv, sigma)
    y = gaussian_blur(inv, sigma) if normalize_borders else 1 - gaussian_blur(mask, sigma)
    y = torch.where(y == 0, torch.ones_like(y), y)  # deep inside the face: no background to average
    return target * mask + (x / y).clamp(0.0, 1.0) * inv


# --- reconstruction ------------------------------------------------------------------------------------------------------


def _mean_chw(x: Tensor) -> Tensor:
    return x.mean(dim=(1, 2, 3))


def recon_loss(
    target: Tensor,
    pred: Tensor,
    target_mask: Tensor,
    pred_mask: Tensor,
    resolution: int,
    *,
    em_mask: Tensor | None = None,
    em_weight: float = 300.0,
    masked: bool = True,
) -> dict[str, Tensor]:
    """SAEHD's per-side reconstruction loss. Every entry is per sample ``[B]`` and already weighted:

    - ``dssim``: Σ weight·DSSIM(k) over :func:`dssim_kernels` (10·DSSIM below 256 px),
    - ``mse``: 10·mean((t-p)²) over C, H, W,
    - ``mask``: 10·mean((target_mask - pred_mask)²),
    - ``eyes_mouth``: em_weight·mean|t·em - p·em| on the *unmasked* images (zeros without ``em_mask``),
    - ``total``: their sum.

    With ``masked`` the images are multiplied by :func:`soft_dilate` (target_mask) before DSSIM and MSE, so the
    far background does not count."""
    t, p = target, pred
    if masked:
        m = soft_dilate(target_mask, resolution)
        t, p = t * m, p * m
    d = sum(w * dssim(t, p, k) for k, w in dssim_kernels(resolution))
    mse = 10 * _mean_chw((t - p) ** 2)
    mask = 10 * _mean_chw((target_mask - pred_mask) ** 2)
    em = torch.zeros_like(mse) if em_mask is None else em_weight * _mean_chw((target * em_mask - pred * em_mask).abs())
    return {"dssim": d, "mse": mse, "mask": mask, "eyes_mouth": em, "total": d + mse + mask + em}


# --- style, GAN, regularisers --------------------------------------------------------------------------------------------


def style_loss(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample Σ_c [(Δ mean)² + (Δ std)²] / C over spatial statistics (std = sqrt(var + 1e-5), population
    variance; the 1e-5 keeps the gradient finite on flat channels). DFL's face-style term; the weight is the
    caller's."""
    va, ma = torch.var_mean(a, dim=(2, 3), correction=0)
    vb, mb = torch.var_mean(b, dim=(2, 3), correction=0)
    d = (ma - mb) ** 2 + (torch.sqrt(va + 1e-5) - torch.sqrt(vb + 1e-5)) ** 2
    return d.sum(dim=1) / a.shape[1]


def face_style_loss(
    swap: Tensor, swap_mask: Tensor, dst_pred: Tensor, dst_mask: Tensor, resolution: int, power: float
) -> Tensor:
    """DFL's ``face_style_power`` term, a scalar: 100·power · mean_B style_loss(blur(swap·swap_mask),
    blur(dst_pred·dst_mask)), blur sigma res//8 (DFL's weight 10000·power/100).

    It pulls the colour statistics of the swapped face (dst through the src decoder) towards those of the dst
    reconstruction, so the swap takes on the dst lighting. The dst side is a fixed reference (stop-gradient): only
    the swap moves."""
    sigma = resolution // 8
    a = gaussian_blur(swap * swap_mask, sigma)
    ref = gaussian_blur((dst_pred * dst_mask).detach(), sigma)
    return style_loss(a, ref).mean() * (100.0 * power)


def bg_style_loss(swap: Tensor, dst_target: Tensor, dst_mask: Tensor, resolution: int, power: float) -> Tensor:
    """DFL's ``bg_style_power`` term, a scalar: (10·power/100) · [DSSIM(k=res/11.6) + MSE] between swap·M and
    dst·M, with M = 1 - clip(blur(dst_mask, sigma max(1, res//32)), 0, 1) the background outside a softened mask.

    It teaches the swap to reproduce the dst background (what the merge will blend against). DFL builds M from the
    src target mask by a slip (deepfacelab-notes §4); the dst mask is the one that fits the dst image."""
    m = 1 - gaussian_blur(dst_mask, max(1, resolution // 32)).clamp(0, 1)
    k = int(resolution / 11.6)
    bg = (dssim(swap * m, dst_target * m, k) * 10 * power / 100).mean()
    return bg + ((swap * m - dst_target * m) ** 2).mean() * 10 * power / 100


def gan_input(image: Tensor, mask: Tensor, resolution: int, masked: bool) -> Tensor:
    """What the patch discriminator sees of a src image (the src->src prediction or the src target): with masked
    training ``image · soft_dilate(mask)``, so D judges the face and the band the reconstruction loss sees, not a
    background the model is not asked to draw (DFL's ``gan_power`` on the masked images); else ``image``."""
    return image * soft_dilate(mask, resolution) if masked else image


def bce_with_logits(logits: Tensor, target: float) -> Tensor:
    """Per-sample mean binary cross-entropy of ``logits`` against the constant label ``target``."""
    labels = torch.full_like(logits, target)
    return F.binary_cross_entropy_with_logits(logits, labels, reduction="none").flatten(1).mean(dim=1)


def _heads(x: Tensor | Sequence[Tensor]) -> list[Tensor]:
    return [x] if isinstance(x, Tensor) else list(x)


def gan_g_loss(logits_fake: Tensor | Sequence[Tensor], weight: float = 1.0) -> Tensor:
    """Generator loss, scalar: weight · Σ_heads mean BCE(1, D(fake)), DFL's non-saturating GAN term (-log D(fake)
    keeps a strong gradient while D still wins). Used with the patch discriminator's two heads (weight
    ``gan_power``) and with the code discriminator on the src code (true face, weight ``true_face_power``)."""
    return sum(bce_with_logits(h, 1.0).mean() for h in _heads(logits_fake)) * weight


def gan_d_loss(logits_real: Tensor | Sequence[Tensor], logits_fake: Tensor | Sequence[Tensor]) -> Tensor:
    """Discriminator loss, scalar: Σ_heads ½[BCE(1, D(real)) + BCE(0, D(fake))] (batch mean), DFL's D step for both
    discriminators: the patch D (real = src target, fake = src->src prediction) and the true-face code D (real =
    dst code, fake = src code, so the src code learns to look like a dst one)."""
    real, fake = _heads(logits_real), _heads(logits_fake)
    if len(real) != len(fake):
        raise ValueError(f"{len(real)} real heads but {len(fake)} fake heads")
    return sum(
        0.5 * (bce_with_logits(r, 1.0).mean() + bce_with_logits(f, 0.0).mean()) for r, f in zip(real, fake, strict=True)
    )


def total_variation_mse(x: Tensor) -> Tensor:
    """Per-sample *sum* of squared differences between vertical and horizontal neighbours (DFL's TV term, a sum,
    which is why its weight is as small as 1e-6)."""
    dv = (x[:, :, 1:, :] - x[:, :, :-1, :]) ** 2
    dh = (x[:, :, :, 1:] - x[:, :, :, :-1]) ** 2
    return dv.sum(dim=(1, 2, 3)) + dh.sum(dim=(1, 2, 3))


__all__ = [
    "bce_with_logits",
    "bg_style_loss",
    "blur_kernel_size",
    "blur_out_mask",
    "dssim",
    "dssim_kernels",
    "face_style_loss",
    "gan_d_loss",
    "gan_g_loss",
    "gan_input",
    "gaussian_blur",
    "gaussian_kernel1d",
    "recon_loss",
    "soft_dilate",
    "ssim",
    "style_loss",
    "total_variation_mse",
]
