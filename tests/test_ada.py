"""Adaptive discriminator augmentation: the bgc pipe's matrices and appliers, the pipe, and the p controller (driven
by a real little discriminator that either memorises a tiny real set or cannot)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facelab.imaging import ada
from facelab.imaging.ada import AdaController, AugmentPipe

F64 = torch.float64
GEOMETRIC_OFF = {op: 0 for op in ada.GEOMETRIC_OPS}
COLOR_OFF = {op: 0 for op in ada.COLOR_OPS}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """The small ops here run faster on one thread than two on a shared, busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _vec(*values: float) -> Tensor:
    return torch.tensor(values, dtype=F64)


def _images(n: int = 8, size: int = 32, seed: int = 0, channels: int = 3) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=g) * 2 - 1


def _only(op: str, p: float = 1.0) -> AugmentPipe:
    """A pipe with every op but ``op`` disabled."""
    return AugmentPipe(p, **{o: 0 for o in ada.OPS if o != op})


def _smooth_image(size: int = 32) -> tuple[Tensor, Callable[[Tensor, Tensor], Tensor]]:
    def f(x: Tensor, y: Tensor) -> Tensor:
        return torch.sin(0.3 * x + 0.1 * y) + torch.cos(0.2 * y - 0.15 * x)

    ys, xs = torch.meshgrid(torch.arange(size, dtype=F64), torch.arange(size, dtype=F64), indexing="ij")
    return f(xs, ys).float()[None, None].repeat(1, 3, 1, 1), f


# ----------------------------------------------------------------------------------------------------------------------
# The pipe: exact cases.


def test_p0_returns_input_unchanged() -> None:
    x = _images()
    pipe = AugmentPipe()
    assert float(pipe.p) == 0.0 and pipe.p.dtype == torch.float32
    assert pipe(x) is x
    assert pipe(x, generator=torch.Generator().manual_seed(3)) is x


def test_xflip_only_gives_the_image_or_its_exact_mirror() -> None:
    x = _images(32, 16)
    out = _only("xflip")(x, generator=torch.Generator().manual_seed(0))
    same = (out == x).flatten(1).all(1)
    mirror = (out == x.flip(-1)).flatten(1).all(1)
    assert bool((same | mirror).all())
    assert 0 < int(mirror.sum()) < 32  # both seen (a fair coin over 32 images)


def test_rotate90_only_gives_exact_quarter_turns() -> None:
    x = _images(32, 16)
    out = _only("rotate90")(x, generator=torch.Generator().manual_seed(0))
    seen = set()
    for i in range(32):
        ks = [k for k in range(4) if torch.equal(out[i], torch.rot90(x[i], k, dims=(-2, -1)))]
        assert len(ks) == 1
        seen.add(ks[0])
    assert seen == {0, 1, 2, 3}


def test_xint_only_shifts_by_whole_pixels_with_reflection() -> None:
    x = _images(16, 16)
    out = _only("xint")(x, generator=torch.Generator().manual_seed(0))
    moved = 0
    for i in range(16):
        matches = [
            (dx, dy)
            for dx in range(-2, 3)
            for dy in range(-2, 3)
            if torch.equal(out[i], ada.reflect_pad(x[i : i + 1], 2, 2, 2, 2)[0, :, 2 - dy : 18 - dy, 2 - dx : 18 - dx])
        ]
        assert matches, i  # +-0.125 * 16 px = at most 2 px
        moved += matches[0] != (0, 0)
    assert moved > 8


def test_same_generator_seed_reproduces_and_global_seed_works() -> None:
    x = _images()
    pipe = AugmentPipe(0.7)
    a = pipe(x, generator=torch.Generator().manual_seed(5))
    b = pipe(x, generator=torch.Generator().manual_seed(5))
    c = pipe(x, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(11)
    d = pipe(x)
    torch.manual_seed(11)
    assert torch.equal(d, pipe(x))


def test_shape_dtype_channels_and_autocast() -> None:
    x = _images(4, 16)
    pipe = AugmentPipe(1.0)
    gen = torch.Generator().manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = pipe(x, generator=gen)
        out16 = pipe(x.bfloat16(), generator=gen)
    assert out.dtype == torch.float32 and out.shape == x.shape and torch.isfinite(out).all()
    assert out16.dtype == torch.bfloat16 and out16.shape == x.shape
    # Colour ops need RGB: with one channel they are skipped, the geometric ones still run.
    gray = _images(4, 16, channels=1)
    assert torch.equal(AugmentPipe(1.0, **GEOMETRIC_OFF)(gray, generator=gen), gray)
    assert AugmentPipe(1.0, **COLOR_OFF)(gray, generator=gen).shape == gray.shape
    with pytest.raises(ValueError):
        AugmentPipe(1.5)
    with pytest.raises(ValueError):
        pipe(x[0])


def test_p_is_a_buffer_in_state_dict() -> None:
    pipe = AugmentPipe(0.25, hue=0)
    assert "p" in pipe.state_dict() and "p=0.25" in repr(pipe) and "hue=0" in repr(pipe)
    other = AugmentPipe()
    other.load_state_dict(pipe.state_dict())
    assert float(other.p) == 0.25
    other.set_p(1.7)
    assert float(other.p) == 1.0


# ----------------------------------------------------------------------------------------------------------------------
# Differentiability.


def test_gradients_flow_and_double_backward_works() -> None:
    x = _images(4, 16).requires_grad_()
    out = AugmentPipe(1.0)(x, generator=torch.Generator().manual_seed(0))
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    # A nonlinear "D" so the gradient depends on x, as in R1 through the pipe.
    (grad,) = torch.autograd.grad((out * weight).tanh().sum(), x, create_graph=True)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    grad.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_appliers_pass_gradcheck() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 6, 6, generator=g, dtype=F64).requires_grad_()
    geo = ada.centered_to_pixel(ada.rotate_matrix(_vec(0.4)) @ ada.scale_matrix(_vec(0.9), _vec(1.1)), 5, 5)
    flips = ada.centered_to_pixel(ada.rotate90_matrix(torch.tensor([1, 2])), 6, 6)
    col = ada.hue_rotation_matrix(_vec(0.5, 2.0)) @ ada.color_translate_matrix(_vec(0.1, -0.2))
    for fn, inp in (
        (lambda t: ada.resample(t, geo), x[:1, :, :5, :5].detach().requires_grad_()),  # the costly one: keep it tiny
        (lambda t: ada.blit(t, flips), x),
        (lambda t: ada.apply_color_matrices(t, col), x),
    ):
        assert torch.autograd.gradcheck(fn, (inp,))
        assert torch.autograd.gradgradcheck(fn, (inp,))


# ----------------------------------------------------------------------------------------------------------------------
# Colour matrices.


def _luma(x: Tensor) -> Tensor:
    return x.mean(1)


def test_brightness_and_contrast() -> None:
    x = _images(2, 8)
    out = ada.apply_color_matrices(x, ada.color_translate_matrix(_vec(0.3, -0.1)))
    assert torch.allclose(out.mean((1, 2, 3)) - x.mean((1, 2, 3)), torch.tensor([0.3, -0.1]), atol=1e-6)
    out = ada.apply_color_matrices(x, ada.color_scale_matrix(_vec(2.0, 0.5)))
    assert torch.allclose(out, x * torch.tensor([2.0, 0.5]).view(2, 1, 1, 1), atol=1e-6)


def test_luma_flip_negates_luma_and_keeps_chroma() -> None:
    gray = torch.full((1, 3, 4, 4), 0.4)
    out = ada.apply_color_matrices(gray, ada.luma_flip_matrix(torch.tensor([1])))
    assert torch.allclose(out, -gray, atol=1e-6)
    x = _images(2, 8)
    out = ada.apply_color_matrices(x, ada.luma_flip_matrix(torch.tensor([1, 1])))
    assert torch.allclose(_luma(out), -_luma(x), atol=1e-6)
    assert torch.allclose(out - _luma(out)[:, None], x - _luma(x)[:, None], atol=1e-6)
    m = ada.luma_flip_matrix(torch.tensor([1, 0]))
    assert torch.allclose(m[0] @ m[0], torch.eye(4, dtype=F64)) and torch.equal(m[1], torch.eye(4, dtype=F64))


def test_hue_rotation_keeps_luma_and_chroma_and_a_third_turn_cycles_channels() -> None:
    x = _images(3, 8)
    out = ada.apply_color_matrices(x, ada.hue_rotation_matrix(_vec(0.7, -2.5, math.pi)))
    assert torch.allclose(_luma(out), _luma(x), atol=1e-6)
    chroma = (x - _luma(x)[:, None]).norm(dim=1)
    assert torch.allclose((out - _luma(out)[:, None]).norm(dim=1), chroma, atol=1e-5)
    third = ada.hue_rotation_matrix(_vec(2 * math.pi / 3))[0, :3, :3]
    assert torch.allclose(third.abs().sum(0), torch.ones(3, dtype=F64))
    assert torch.allclose(third @ third @ third, torch.eye(3, dtype=F64))
    assert torch.allclose(third.round(), third, atol=1e-12)  # a permutation of R, G, B


def test_saturation_keeps_grey_grey_and_zero_gives_luma() -> None:
    gray = torch.full((1, 3, 4, 4), -0.3)
    for s in (0.0, 0.5, 4.0):
        assert torch.allclose(ada.apply_color_matrices(gray, ada.saturation_matrix(_vec(s))), gray, atol=1e-6)
    x = _images(2, 8)
    out = ada.apply_color_matrices(x, ada.saturation_matrix(_vec(0.0, 1.0)))
    assert torch.allclose(out[0], _luma(x[:1]).expand(3, 8, 8), atol=1e-6)
    assert torch.allclose(out[1], x[1], atol=1e-6)


def test_color_sampler_is_identity_at_p0_and_fires_at_p1() -> None:
    assert bool(ada.is_identity(ada.sample_color_matrices(16, 0.0)).all())
    assert not bool(ada.is_identity(ada.sample_color_matrices(16, 1.0)).any())


# ----------------------------------------------------------------------------------------------------------------------
# Geometric matrices and their application.


def test_matrix_builders_compose_with_their_inverses() -> None:
    theta, s, t = _vec(0.3, -2.0), _vec(0.7, 1.9), _vec(2.5, -1.0)
    eye = torch.eye(3, dtype=F64).expand(2, 3, 3)
    assert torch.allclose(ada.rotate_matrix(theta) @ ada.rotate_matrix(-theta), eye, atol=1e-12)
    assert torch.allclose(ada.scale_matrix(s, 1 / s) @ ada.scale_matrix(1 / s, s), eye, atol=1e-12)
    assert torch.allclose(ada.translate_matrix(t, -t) @ ada.translate_matrix(-t, t), eye, atol=1e-12)
    q = ada.rotate90_matrix(torch.tensor([0, 1, 2, 3]))
    assert torch.equal(q, q.round())
    assert torch.equal(torch.linalg.matrix_power(q, 4), torch.eye(3, dtype=F64).expand(4, 3, 3))
    g = ada.sample_geometric_matrices(32, 32, 32, 1.0, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(g @ torch.linalg.inv(g), torch.eye(3, dtype=F64).expand(32, 3, 3), atol=1e-9)
    assert bool(ada.is_identity(ada.sample_geometric_matrices(8, 32, 32, 0.0)).all())
    assert bool(ada.is_identity(ada.centered_to_pixel(torch.eye(3, dtype=F64)[None], 7, 10)).all())


def test_integer_translation_moves_a_delta_by_whole_pixels() -> None:
    delta = torch.zeros(1, 1, 16, 16)
    delta[0, 0, 5, 7] = 1.0
    # Output -> input matrices, so moving content by (+3, -2) is translate(-3, +2).
    m = ada.centered_to_pixel(ada.translate_matrix(_vec(-3.0), _vec(2.0)), 16, 16)
    assert bool(ada.is_blit(m).all())
    out = ada.apply_geometric_matrices(delta, m)
    assert out[0, 0, 3, 10] == 1.0 and out.sum() == 1.0


def test_reflect_index_matches_torch_reflect_pad() -> None:
    x = _images(1, 5)
    assert torch.equal(ada.reflect_pad(x, 3, 4, 2, 1), F.pad(x, (3, 4, 2, 1), mode="reflect"))
    assert torch.equal(ada.reflect_index(torch.arange(-9, 14), 5), ada.reflect_index(torch.arange(-9, 14) + 8, 5))
    assert bool((ada.reflect_pad(x, 12, 12, 12, 12).abs() <= 1).all())  # pads larger than the image


def test_blit_matches_flip_and_rot90() -> None:
    x = _images(2, 8)
    flip = ada.centered_to_pixel(ada.scale_matrix(_vec(-1, -1), _vec(1, -1)), 8, 8)
    assert torch.equal(ada.blit(x, flip), torch.stack([x[0].flip(-1), x[1].flip(-1, -2)]))


def test_lowpass_is_orthogonal_sym6() -> None:
    h = np.array(ada.orthogonal_lowpass(6))
    assert h.size == 12 and abs(h.sum() - 1) < 1e-12
    for j in range(1, 6):  # orthogonal to its even shifts: what makes 2x up then down the identity
        assert abs(h[: -2 * j] @ h[2 * j :]) < 1e-12
    t = np.arange(12)
    for k in range(6):  # 6 vanishing moments of the wavelet
        assert abs(((-1.0) ** t * t**k) @ h) < 1e-6 * 12**k
    # PyWavelets' sym6 decomposition low-pass (sums to sqrt 2); ours is its time reverse (the reconstruction filter).
    sym6 = [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
            0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
            -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148]  # fmt: skip
    assert np.allclose(h[::-1] * math.sqrt(2), sym6, atol=1e-10)


def test_bilinear_reflect_equals_grid_sample_and_differentiates_twice() -> None:
    g = torch.Generator().manual_seed(0)
    img = torch.rand(2, 3, 9, 7, generator=g, dtype=torch.float64)
    x = torch.rand(2, 5, 6, generator=g, dtype=torch.float64) * 30 - 12  # far outside on both sides
    y = torch.rand(2, 5, 6, generator=g, dtype=torch.float64) * 30 - 12
    grid = torch.stack([x / 6 * 2 - 1, y / 8 * 2 - 1], dim=-1)
    ref = torch.nn.functional.grid_sample(img, grid, "bilinear", "reflection", align_corners=True)
    assert torch.allclose(ada.bilinear_reflect(img, x, y), ref, atol=1e-12)
    inp = img.clone().requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda t: ada.bilinear_reflect(t, x, y), (inp,))


def test_resample_identity_is_nearly_exact() -> None:
    x = _images(2, 16)
    out = ada.resample(x, torch.eye(3, dtype=F64).expand(2, 3, 3))
    assert (out - x).abs().max() < 1e-4


def test_resample_matches_the_analytic_transform() -> None:
    img, f = _smooth_image(32)
    ys, xs = torch.meshgrid(torch.arange(32, dtype=F64), torch.arange(32, dtype=F64), indexing="ij")
    cases = [
        ada.rotate_matrix(_vec(0.3)),
        ada.scale_matrix(_vec(0.8), _vec(1.2)),
        ada.translate_matrix(_vec(1.3), _vec(-2.7)),
        ada.rotate_matrix(_vec(-0.5))
        @ ada.scale_matrix(_vec(0.9), _vec(0.9))
        @ ada.translate_matrix(_vec(0.4), _vec(0.0)),
    ]
    for m in cases:
        mp = ada.centered_to_pixel(m, 32, 32)
        sx = mp[0, 0, 0] * xs + mp[0, 0, 1] * ys + mp[0, 0, 2]
        sy = mp[0, 1, 0] * xs + mp[0, 1, 1] * ys + mp[0, 1, 2]
        out = ada.apply_geometric_matrices(img, mp)[0, 0].double()
        inside = (sx > 2) & (sx < 29) & (sy > 2) & (sy < 29)
        inside[:4], inside[-4:], inside[:, :4], inside[:, -4:] = False, False, False, False
        assert int(inside.sum()) > 400
        assert (out - f(sx, sy))[inside].abs().max() < 0.02


def test_resample_is_anti_aliased() -> None:
    """Shrinking a near-Nyquist stripe pattern 2x must not fold it into a visible low-frequency pattern."""
    xs = torch.arange(64, dtype=torch.float32)
    stripes = torch.cos(math.pi * 0.9 * xs)[None, None, None, :].expand(1, 3, 64, 64).contiguous()
    m = ada.centered_to_pixel(ada.scale_matrix(_vec(2.0), _vec(2.0)), 64, 64)
    out = ada.apply_geometric_matrices(stripes, m)[0, 0, 24:40, 24:40]
    assert out.abs().max() < 0.1  # naive point sampling would give an alias of amplitude ~1


def test_identity_images_untouched_in_a_mixed_batch() -> None:
    x = _images(3, 16)
    m = torch.cat([torch.eye(3, dtype=F64)[None], ada.rotate_matrix(_vec(0.5)), ada.rotate90_matrix(torch.tensor([1]))])
    m = ada.centered_to_pixel(m, 16, 16)
    out = ada.apply_geometric_matrices(x, m)
    assert torch.equal(out[0], x[0]) and torch.equal(out[2], torch.rot90(x[2], 1, dims=(-2, -1)))
    assert not torch.allclose(out[1], x[1], atol=1e-2)


def test_fraction_changed_grows_with_p() -> None:
    x = _images(128, 16)
    gen = torch.Generator().manual_seed(0)

    def expected(p: float) -> float:
        # Chance that an image comes out unchanged: x-flip and luma flip change it half the times they fire,
        # rotate90 three quarters, integer translation of +-2 px rounds to (0, 0) 1/64 of the time.
        still = (1 - p / 2) ** 2 * (1 - 0.75 * p) * (1 - p * 63 / 64) * (1 - p) ** 8
        return 1 - still

    fractions = []
    for p in (0.0, 0.05, 0.2, 0.5):
        out = AugmentPipe(p)(x, generator=gen)
        frac = float((out != x).flatten(1).any(1).float().mean())
        fractions.append(frac)
        assert abs(frac - expected(p)) < 0.15, (p, frac, expected(p))
    assert fractions[0] == 0.0 and fractions == sorted(fractions) and fractions[-1] > 0.9


# ----------------------------------------------------------------------------------------------------------------------
# Controller.


def test_controller_arithmetic_interval_and_clamps() -> None:
    pipe = AugmentPipe()
    ctl = AdaController(pipe, target=0.6, interval=2, kimg=0.1, batch=10)  # step 10*2/100 = 0.2
    assert ctl.adjustment == pytest.approx(0.2)
    ps = []
    for _ in range(8):
        ctl.accumulate(torch.ones(10))
        assert ctl.step() is None
        ctl.accumulate(torch.tensor([1.0] * 9 + [-1.0]))
        out = ctl.step()
        assert out is not None and out["ada_rt"] == pytest.approx(0.9)
        ps.append(out["ada_p"])
    assert ps == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0, 1.0])
    for _ in range(6):
        ctl.accumulate(-torch.ones(4, 1))
        ctl.step()
        out = ctl.step()
    assert out is not None and out["ada_rt"] == -1.0 and float(pipe.p) == 0.0
    assert ctl.step() is None and ctl.step() is None  # a window without logits leaves p alone


def _structured(n: int, gen: torch.Generator) -> Tensor:
    """Smooth random colour images in (-1, 1): a 6x6 grid of noise, upsampled."""
    return torch.tanh(F.interpolate(torch.randn(n, 3, 6, 6, generator=gen), size=32, mode="bicubic"))


def _train_d(fixed_reals: bool, p0: float, kimg: float, steps: int) -> list[dict[str, float]]:
    """Train a small conv D (no G: fakes are fresh draws of the reals' distribution) with the pipe on both sides,
    feeding D(augment(reals)) to the controller. With ``fixed_reals`` the reals are 8 fixed images that D can
    memorise; otherwise reals are never seen twice and D cannot tell them from the fakes."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    d = nn.Sequential(
        nn.Conv2d(3, 16, 3, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(16, 32, 3, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(32, 32, 3, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 1),
    )
    opt = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.5, 0.99))
    pipe = AugmentPipe(p0)
    ctl = AdaController(pipe, target=0.6, interval=4, kimg=kimg, batch=8)
    reals_fixed = _structured(8, gen)
    log = []
    for _ in range(steps):
        reals = reals_fixed if fixed_reals else _structured(8, gen)
        real_logits = d(pipe(reals, generator=gen))
        fake_logits = d(pipe(_structured(8, gen), generator=gen))
        loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        ctl.accumulate(real_logits)
        out = ctl.step()
        if out is not None:
            log.append(out)
    return log


def test_controller_raises_p_when_d_memorises_a_tiny_real_set() -> None:
    log = _train_d(fixed_reals=True, p0=0.0, kimg=2.0, steps=100)  # step 8*4/2000 = 0.016
    ps, rts = [e["ada_p"] for e in log], [e["ada_rt"] for e in log]
    assert len(log) == 25
    assert max(rts[1:3]) > 0.9  # un-augmented, the 8 reals are memorised within a few steps
    assert all(p > 0 for p in ps[1:])  # the controller never lets p fall back to 0
    assert max(ps) >= 0.06 and ps[-1] > 0.03  # it climbs to where augmentation stops the memorising, and holds


def test_controller_lowers_p_to_zero_when_d_cannot_overfit() -> None:
    log = _train_d(fixed_reals=False, p0=0.3, kimg=0.5, steps=80)  # step 0.064: 0 within 5 falls
    ps, rts = [e["ada_p"] for e in log], [e["ada_rt"] for e in log]
    assert len(log) == 20 and np.mean(rts) < 0.3
    first_zero = ps.index(0.0)
    assert first_zero <= 8
    assert all(p == 0.0 for p in ps[first_zero:])  # clamped, not negative, and stays there


def test_controller_state_round_trip_is_exact() -> None:
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(int(torch.randint(1, 9, (1,), generator=g)), generator=g) + 1.0 for _ in range(60)]

    def run(ctl: AdaController, chunk: list[Tensor]) -> list[float]:
        ps = []
        for logits in chunk:
            ctl.accumulate(logits)
            ctl.step()
            ps.append(float(ctl.pipe.p))
        return ps

    a = AdaController(AugmentPipe(0.1), target=0.6, interval=3, kimg=0.5, batch=5)
    run(a, batches[:20])
    a.accumulate(torch.tensor([1.0, -1.0, 1.0]))  # mid-window: pending sums must survive the round trip
    state = json.loads(json.dumps(a.state_dict()))
    rest = run(a, batches[20:])
    b = AdaController(AugmentPipe(), target=0.6, interval=3, kimg=0.5, batch=5)
    b.load_state_dict(state)
    assert run(b, batches[20:]) == rest
    assert len(set(rest)) > 2  # p actually moved
