"""Training losses: Gaussian filtering, SSIM against scikit-image, the SAEHD reconstruction recipe, style/GAN/TV."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facelab.runs import guard as G
from facelab.train import losses as L


def _nchw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]


@pytest.fixture(scope="module")
def pair(astronaut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut at 64 px (float64 in [0, 1]) and a blurred, noisy copy."""
    a = cv2.resize(astronaut, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float64) / 255
    noise = np.random.default_rng(0).normal(0, 0.05, a.shape)
    return a, np.clip(cv2.GaussianBlur(a, (5, 5), 1.0) + noise, 0, 1)


def _square_mask(res: int, lo: int, hi: int, batch: int = 1) -> torch.Tensor:
    m = torch.zeros(batch, 1, res, res)
    m[..., lo:hi, lo:hi] = 1
    return m


# --- Gaussian filtering ---------------------------------------------------------------------------------------------


def test_blur_kernel_size_matches_dfl_rule() -> None:
    assert [L.blur_kernel_size(s) for s in (0.5, 1, 1.5, 2, 4, 16)] == [3, 5, 7, 9, 17, 65]


def test_gaussian_kernel1d_is_normalised_symmetric_and_centred() -> None:
    k = L.gaussian_kernel1d(7, 1.5, dtype=torch.float64)
    assert k.sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(k, k.flip(0))
    assert int(k.argmax()) == 3
    even = L.gaussian_kernel1d(22, 1.5, dtype=torch.float64)  # centred between taps 10 and 11
    torch.testing.assert_close(even, even.flip(0))
    with pytest.raises(ValueError):
        L.gaussian_kernel1d(5, 0.0)


def test_gaussian_blur_same_size_zero_padding_and_impulse_response() -> None:
    x = torch.zeros(1, 1, 15, 15, dtype=torch.float64)
    x[..., 7, 7] = 1
    y = L.gaussian_blur(x, 1.0)
    assert y.shape == x.shape
    k = L.gaussian_kernel1d(5, 1.0, dtype=torch.float64)
    torch.testing.assert_close(y[0, 0, 5:10, 5:10], torch.outer(k, k))
    ones = L.gaussian_blur(torch.ones(1, 2, 9, 9), 1.0)
    torch.testing.assert_close(ones[..., 4, 4], torch.ones(1, 2))  # interior keeps constants
    assert ones[0, 0, 0, 0] < 0.5  # zero padding darkens corners (DFL does the same)
    assert L.gaussian_blur(x, 0) is x
    with pytest.raises(ValueError):
        L.gaussian_blur(x, 1.0, kernel_size=4)


# --- SSIM -------------------------------------------------------------------------------------------------------------


def test_ssim_matches_skimage_on_real_image(pair: tuple[np.ndarray, np.ndarray]) -> None:
    from skimage.metrics import structural_similarity

    a, b = pair
    # skimage truncates its Gaussian at 3.5 sigma -> 11 taps at sigma 1.5 and averages over the region 5 px from
    # the border, i.e. exactly our valid-padding map for an 11-tap window.
    ref = structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=-1
    )
    ours64 = L.ssim(_nchw(a), _nchw(b), 11).item()
    ours32 = L.ssim(_nchw(a).float(), _nchw(b).float(), 11).item()
    assert ours64 == pytest.approx(ref, abs=1e-10)
    assert ours32 == pytest.approx(ref, abs=1e-5)
    assert 0.3 < ref < 0.95  # a meaningful, non-trivial comparison


def test_dssim_identity_symmetry_range(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = (_nchw(x).float() for x in pair)
    x = torch.cat([a, b])
    y = torch.cat([b, 1 - a])
    d = L.dssim(x, y, 11)
    assert d.shape == (2,)
    torch.testing.assert_close(L.dssim(x, x, 11), torch.zeros(2), atol=1e-6, rtol=0)
    torch.testing.assert_close(d, L.dssim(y, x, 11))
    assert ((d >= 0) & (d <= 1)).all()
    assert d[1] > 0.5  # an inverted image is anti-correlated: SSIM < 0
    assert d[0] < d[1]


def test_ssim_half_precision_is_computed_in_float32(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = (_nchw(x) for x in pair)
    s16 = L.ssim(a.bfloat16(), b.bfloat16(), 11)
    assert s16.dtype == torch.float32
    assert s16.item() == pytest.approx(L.ssim(a, b, 11).item(), abs=5e-3)  # only input rounding differs


def test_ssim_rejects_bad_kernel_sizes() -> None:
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError):
        L.ssim(x, x, 17)
    with pytest.raises(ValueError):
        L.ssim(x, x, 0)
    with pytest.raises(ValueError):
        L.ssim(x, x[:, :1], 5)


def test_dssim_kernels_follow_dfl() -> None:
    assert L.dssim_kernels(128) == [(11, 10.0)]
    assert L.dssim_kernels(224) == [(19, 10.0)]
    assert L.dssim_kernels(256) == [(22, 5.0), (11, 5.0)]
    assert L.dssim_kernels(512) == [(44, 5.0), (22, 5.0)]


# --- masks ------------------------------------------------------------------------------------------------------------


def test_soft_dilate_is_one_inside_and_ramps_outside() -> None:
    m = _square_mask(64, 16, 48)
    d = L.soft_dilate(m, 64)  # sigma 2, 9 taps
    assert d.shape == m.shape
    assert ((d >= 0) & (d <= 1)).all()
    assert (d[..., 20:44, 20:44] == 1).all()
    assert 0 < d[0, 0, 32, 49] < 1  # the band just outside the mask
    assert d[0, 0, 32, 60] == 0  # far background


def test_blur_out_mask_inpaints_background_without_face_colour() -> None:
    res = 256  # sigma 2
    m = _square_mask(res, 96, 160)
    bg, face = 0.2, 0.9
    t = torch.full((1, 3, res, res), bg) * (1 - m) + face * m
    out = L.blur_out_mask(t, m, res)
    torch.testing.assert_close(out[..., 96:160, 96:160], t[..., 96:160, 96:160])  # face untouched
    background = (bg * (1 - m)).expand_as(t)
    inner = (..., slice(8, -8), slice(8, -8))
    torch.testing.assert_close((out * (1 - m))[inner], background[inner])  # no face colour in the band
    assert out[0, 0, 0, 0] < bg  # DFL's divisor darkens the image border ...
    fixed = L.blur_out_mask(t, m, res, normalize_borders=True)
    torch.testing.assert_close(fixed * (1 - m), background)  # ... the exact normalised convolution does not


# --- reconstruction ---------------------------------------------------------------------------------------------------


def _recon_batch(res: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = L.gaussian_blur(torch.rand(2, 3, res, res, generator=g), 1.0).clamp(0, 1)
    m = _square_mask(res, res // 4, 3 * res // 4, batch=2)
    noise = torch.rand(2, 3, res, res, generator=g)
    return t, m, noise


def test_recon_loss_keys_shapes_and_ordering() -> None:
    t, m, noise = _recon_batch()
    same = L.recon_loss(t, t.clone(), m, m.clone(), 64)
    bad = L.recon_loss(t, noise, m, 1 - m, 64)
    assert set(same) == {"dssim", "mse", "mask", "eyes_mouth", "total"}
    for v in (*same.values(), *bad.values()):
        assert v.shape == (2,)
    torch.testing.assert_close(same["total"], torch.zeros(2), atol=1e-6, rtol=0)
    assert (bad["total"] > 1.0).all()
    assert (bad["eyes_mouth"] == 0).all()
    parts = bad["dssim"] + bad["mse"] + bad["mask"] + bad["eyes_mouth"]
    torch.testing.assert_close(bad["total"], parts)
    torch.testing.assert_close(bad["mask"], torch.full((2,), 10.0))  # MSE of complementary binary masks is 1


def test_recon_loss_unmasked_terms_match_formulas() -> None:
    t, m, noise = _recon_batch()
    r = L.recon_loss(t, noise, m, m, 64, masked=False)
    torch.testing.assert_close(r["dssim"], 10 * L.dssim(t, noise, 5))  # int(64 / 11.6) = 5
    torch.testing.assert_close(r["mse"], 10 * ((t - noise) ** 2).mean(dim=(1, 2, 3)))
    em = torch.zeros_like(m)
    em[..., 20:30, 20:40] = 1
    r = L.recon_loss(t, noise, m, m, 64, masked=False, em_mask=em, em_weight=300.0)
    torch.testing.assert_close(r["eyes_mouth"], 300 * ((t - noise).abs() * em).mean(dim=(1, 2, 3)))


def test_masked_recon_loss_ignores_far_background() -> None:
    t, m, noise = _recon_batch()
    outside = L.soft_dilate(m, 64) == 0
    assert outside.any()
    p = t.clone()
    p2 = torch.where(outside, noise, p)  # change the prediction only where the training mask is 0
    a, b = L.recon_loss(t, p, m, m, 64), L.recon_loss(t, p2, m, m, 64)
    for k in ("dssim", "mse", "total"):
        torch.testing.assert_close(a[k], b[k])
    unmasked = L.recon_loss(t, p2, m, m, 64, masked=False)
    assert (unmasked["total"] > a["total"] + 0.1).all()


def test_recon_loss_gradients_flow_at_two_scales() -> None:
    res = 256  # two DSSIM windows (22 and 11)
    g = torch.Generator().manual_seed(1)
    t = torch.rand(1, 3, res, res, generator=g)
    m = _square_mask(res, 64, 192)
    pred = torch.rand(1, 3, res, res, generator=g).requires_grad_()
    pm = torch.full_like(m, 0.5).requires_grad_()
    em = torch.zeros_like(m)
    em[..., 100:120, 80:180] = 1
    r = L.recon_loss(t, pred, m, pm, res, em_mask=em)
    r["total"].mean().backward()
    assert pred.grad is not None and pm.grad is not None
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    assert pm.grad.abs().sum() > 0


def test_recon_loss_options_are_keyword_only() -> None:
    t, m, noise = _recon_batch()
    with pytest.raises(TypeError):
        L.recon_loss(t, noise, m, m, 64, False)  # a bare False could be read as masked or as anything after it


# --- style, GAN, TV ---------------------------------------------------------------------------------------------------


def test_style_loss_mean_and_std_terms() -> None:
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(L.style_loss(x, x), torch.zeros(2))
    torch.testing.assert_close(L.style_loss(x, x + 0.3), torch.full((2,), 0.09))  # Σ_c 0.3² / C
    flat = torch.full((1, 2, 8, 8), 0.5)
    noisy = flat.clone()
    noisy[:, 0, ::2, :] += 0.1
    noisy[:, 0, 1::2, :] -= 0.1  # channel 0: mean unchanged, variance 0.01
    expected = (math.sqrt(0.01 + 1e-5) - math.sqrt(1e-5)) ** 2 / 2
    assert L.style_loss(flat, noisy).item() == pytest.approx(expected, rel=1e-4)
    a = x.clone().requires_grad_()
    L.style_loss(a, torch.full_like(x, 0.5)).sum().backward()  # flat reference: finite gradient thanks to 1e-5
    assert torch.isfinite(a.grad).all()


def test_gan_losses_match_bce() -> None:
    g = torch.Generator().manual_seed(3)
    center, full = torch.randn(4, 1, 4, 4, generator=g), torch.randn(4, 1, 32, 32, generator=g)
    center_r, full_r = torch.randn(4, 1, 4, 4, generator=g), torch.randn(4, 1, 32, 32, generator=g)
    bce = F.binary_cross_entropy_with_logits
    exp_g = bce(center, torch.ones_like(center)) + bce(full, torch.ones_like(full))
    torch.testing.assert_close(L.gan_g_loss([center, full]), exp_g)
    exp_d = 0.5 * (bce(center_r, torch.ones_like(center_r)) + bce(center, torch.zeros_like(center)))
    exp_d = exp_d + 0.5 * (bce(full_r, torch.ones_like(full_r)) + bce(full, torch.zeros_like(full)))
    torch.testing.assert_close(L.gan_d_loss([center_r, full_r], [center, full]), exp_d)
    zero = torch.zeros(2, 1)
    assert L.gan_g_loss(zero).item() == pytest.approx(math.log(2))  # a bare tensor is one head
    assert L.gan_d_loss(zero, zero).item() == pytest.approx(math.log(2))
    assert L.bce_with_logits(center, 1.0).shape == (4,)
    with pytest.raises(ValueError):
        L.gan_d_loss([center], [center, full])


def test_gan_losses_weight_and_direction() -> None:
    logits = torch.linspace(-2, 2, 8).view(2, 1, 2, 2)
    torch.testing.assert_close(L.gan_g_loss(logits, weight=0.25), 0.25 * L.gan_g_loss(logits))
    # G wants D(fake) high; D wants D(real) high and D(fake) low
    assert L.gan_g_loss(logits + 1) < L.gan_g_loss(logits) < L.gan_g_loss(logits - 1)
    assert L.gan_d_loss(logits + 1, logits) < L.gan_d_loss(logits, logits) < L.gan_d_loss(logits, logits + 1)
    x = torch.zeros(4, 1, requires_grad=True)
    L.gan_g_loss(x, weight=2.0).backward()
    torch.testing.assert_close(x.grad, torch.full((4, 1), -2.0 * 0.5 / 4))  # d/dx softplus(-x) = -sigmoid(-x)


def _const(value: float, res: int, channels: int = 3) -> torch.Tensor:
    return torch.full((1, channels, res, res), value)


def test_face_style_loss_known_value_for_flat_faces() -> None:
    """Flat swap c1 and dst c2 under full masks: blur(c) = c·B with B = blur(ones) (zero padding makes B < 1 at the
    border), so per channel Δmean = (c1 - c2)·mean B and std(c·B) = sqrt(c²·var B + 1e-5); weight 100·power."""
    res, power, c1, c2 = 32, 0.5, 0.8, 0.3
    ones = torch.ones(1, 1, res, res)
    b = L.gaussian_blur(ones, res // 8)
    var, mean = (float(v) for v in torch.var_mean(b, correction=0))
    style = ((c1 - c2) * mean) ** 2 + (math.sqrt(c1**2 * var + 1e-5) - math.sqrt(c2**2 * var + 1e-5)) ** 2
    got = L.face_style_loss(_const(c1, res), ones, _const(c2, res), ones, res, power)
    assert got.dim() == 0
    assert got.item() == pytest.approx(100 * power * style, rel=1e-5)
    assert L.face_style_loss(_const(c2, res), ones, _const(c2, res), ones, res, power).item() == pytest.approx(0.0)


def test_face_style_loss_moves_only_the_swap() -> None:
    g = torch.Generator().manual_seed(4)
    swap, dst = torch.rand(2, 3, 32, 32, generator=g).requires_grad_(), torch.rand(2, 3, 32, 32, generator=g)
    swap_m, dst_m = torch.ones(2, 1, 32, 32).requires_grad_(), torch.ones(2, 1, 32, 32).requires_grad_()
    dst.requires_grad_()
    L.face_style_loss(swap, swap_m, dst, dst_m, 32, 1.0).backward()
    assert swap.grad.abs().sum() > 0 and swap_m.grad.abs().sum() > 0
    assert dst.grad is None and dst_m.grad is None  # the dst reconstruction is a stop-gradient reference


def test_bg_style_loss_judges_only_the_background() -> None:
    res, power = 64, 20.0
    g = torch.Generator().manual_seed(5)
    dst = torch.rand(1, 3, res, res, generator=g)
    # no face: the whole image is background, (10·power/100)·(DSSIM + MSE) of the two images
    swap = (dst + 0.1).clamp(0, 1)
    none = torch.zeros(1, 1, res, res)
    expected = 10 * power / 100 * (L.dssim(swap, dst, int(res / 11.6)) + ((swap - dst) ** 2).mean())
    torch.testing.assert_close(L.bg_style_loss(swap, dst, none, res, power), expected[0])
    # a face mask: a swap that differs from dst only well inside it costs nothing
    m = _square_mask(res, 8, 56)
    inside = torch.zeros_like(m, dtype=torch.bool)
    inside[..., 20:44, 20:44] = True
    changed = torch.where(inside, 1 - dst, dst)
    assert L.bg_style_loss(changed, dst, m, res, power).item() == pytest.approx(0.0, abs=1e-7)
    assert L.bg_style_loss(swap, dst, m, res, power) > 0


def test_gan_input_masks_with_the_soft_dilated_mask() -> None:
    res = 64
    img = torch.rand(2, 3, res, res, generator=torch.Generator().manual_seed(6))
    m = _square_mask(res, 16, 48, batch=2)
    masked = L.gan_input(img, m, res, masked=True)
    torch.testing.assert_close(masked, img * L.soft_dilate(m, res))
    torch.testing.assert_close(masked[..., 20:44, 20:44], img[..., 20:44, 20:44])  # the face as it is
    assert (masked[..., :4, :4] == 0).all()  # the far background is dark
    assert L.gan_input(img, m, res, masked=False) is img


def test_total_variation_mse_sums_squared_neighbour_differences() -> None:
    x = torch.arange(4.0).view(1, 1, 1, 4).expand(2, 3, 5, 4)  # horizontal ramp with step 1
    torch.testing.assert_close(L.total_variation_mse(x), torch.full((2,), 3 * 5 * 3.0))
    assert (L.total_variation_mse(torch.ones(1, 3, 8, 8)) == 0).all()


# --- guard ------------------------------------------------------------------------------------------------------------


def test_finite_or_raise() -> None:
    ok = {"src": torch.tensor(1.0), "dst": torch.tensor([0.5, 0.25]), "gan": 0.1}
    assert G.finite_or_raise(ok) is ok
    assert G.finite_or_raise({}) == {}
    with pytest.raises(G.NonFiniteLossError) as e:
        G.finite_or_raise({"src": torch.tensor(1.0), "dst": torch.tensor([0.5, float("nan")])})
    assert e.value.name == "dst" and math.isnan(e.value.value)
    assert isinstance(e.value, FloatingPointError)
    with pytest.raises(G.NonFiniteLossError, match="'gan'"):
        G.finite_or_raise({"gan": float("inf")})
