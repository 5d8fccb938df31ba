"""StyleGAN2 G/D (facelab.augment.networks): parameter counts against the reference notes §7, shapes and noise/
truncation modes, double backward (R1, path length), FIR resampling, config resolution, bf16 autocast.

Parameter counts use meta-device modules (no memory, no init cost); the functional tests use the narrow 32-px
``cpu`` preset so the file stays fast on a couple of CPU cores."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from facelab.augment.networks import (
    Discriminator,
    Generator,
    MinibatchStd,
    build_networks,
    channels,
    downsample2d,
    fir_filter,
    fir_kernel,
    modulated_conv2d,
    param_counts,
    resolve_gan_config,
    upsample2d,
)
from facelab.config import GanConfig


def _meta_nets(resolution: int, cfg: str) -> tuple[Generator, Discriminator]:
    with torch.device("meta"):
        return build_networks(resolve_gan_config(GanConfig(resolution=resolution, cfg=cfg)))


@pytest.fixture(scope="module")
def nets() -> tuple[Generator, Discriminator]:
    """32-px ``cpu`` preset G and D, with noise strengths raised from their init of 0 so that noise is visible."""
    torch.manual_seed(0)
    g, d = build_networks(resolve_gan_config(GanConfig(resolution=32, cfg="cpu")))
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)
    return g, d


# --- 1. parameter counts (notes §7) ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("res", "g_total", "g_map", "g_syn", "num_ws", "d_total"),
    [
        (64, 22_243_608, 525_312, 21_718_296, 10, 23_407_361),
        (128, 22_949_277, 525_312, 22_423_965, 12, 23_882_369),
        (256, 23_191_522, 525_312, 22_666_210, 14, 24_001_089),
    ],
)
def test_param_counts_auto(res: int, g_total: int, g_map: int, g_syn: int, num_ws: int, d_total: int) -> None:
    g, d = _meta_nets(res, "auto")
    counts = param_counts(g)
    assert (counts["total"], counts["mapping"], counts["synthesis"]) == (g_total, g_map, g_syn)
    assert g.num_ws == g.synthesis.num_ws == g.mapping.num_ws == num_ws
    assert param_counts(d)["total"] == d_total


def test_param_counts_paper256_and_blocks() -> None:
    g, d = _meta_nets(256, "paper256")
    assert param_counts(g)["total"] == 24_767_458
    assert param_counts(g)["mapping"] == 2_101_248
    assert param_counts(d)["total"] == 24_001_089
    # Per-block shape of the capacity (notes §7): b8..b32 are the heavy G blocks, the epilogue the heaviest D part.
    syn = param_counts(g.synthesis)
    assert syn["b8"] == syn["b16"] == syn["b32"] == 5_509_125
    assert param_counts(d)["b4"] == 6_559_745
    assert [channels(r, 16384, 512) for r in (4, 32, 64, 256)] == [512, 512, 256, 64]


# --- 2. shapes, noise modes, truncation ----------------------------------------------------------------------------


def test_shapes_and_noise_modes(nets: tuple[Generator, Discriminator]) -> None:
    g, d = nets
    z = torch.randn(2, g.z_dim)
    with torch.no_grad():
        img = g(z, noise_mode="const")
        assert img.shape == (2, 3, 32, 32) and img.dtype == torch.float32
        assert torch.isfinite(img).all() and 0.01 < img.std() < 10
        assert d(img).shape == (2, 1)
        assert torch.equal(g(z, noise_mode="const"), img)  # const: deterministic
        none = g(z, noise_mode="none")
        assert torch.equal(g(z, noise_mode="none"), none) and not torch.allclose(none, img)
        assert not torch.equal(g(z), g(z))  # random: fresh noise each call
    with pytest.raises(ValueError, match="noise_mode"):
        g(z, noise_mode="bogus")


def test_truncation_and_w_avg(nets: tuple[Generator, Discriminator]) -> None:
    g, _ = nets
    m = g.mapping
    saved = m.w_avg.clone()
    try:
        m.w_avg.zero_()
        with torch.no_grad():
            ws = m(torch.randn(8, g.z_dim), update_emas=True)
            assert ws.shape == (8, g.num_ws, g.w_dim)
            assert torch.allclose(m.w_avg, 0.005 * ws[:, 0].mean(0), atol=1e-6)  # 0.995 * 0 + 0.005 * mean
            img = g(torch.randn(3, g.z_dim), truncation_psi=0, noise_mode="const")
            ref = g.synthesis(m.w_avg.expand(1, g.num_ws, -1), noise_mode="const")
            assert torch.allclose(img, ref.expand(3, -1, -1, -1), atol=1e-5)  # every z gives the w_avg image
            cut = m(torch.randn(2, g.z_dim), truncation_psi=0, truncation_cutoff=3)
            assert torch.equal(cut[:, :3], m.w_avg.expand(2, 3, -1)) and not torch.allclose(cut[:, 3], m.w_avg)
    finally:
        m.w_avg.copy_(saved)


def test_mbstd_group_must_divide_batch() -> None:
    x = torch.randn(6, 8, 4, 4)
    assert MinibatchStd(4)(x[:4]).shape == (4, 9, 4, 4)
    assert MinibatchStd(4)(x[:2]).shape == (2, 9, 4, 4)  # group = min(4, N)
    with pytest.raises(ValueError, match="multiple of the group"):
        MinibatchStd(4)(x)


# --- 3. double backward ----------------------------------------------------------------------------------------------


def _grads_ok(module: torch.nn.Module) -> None:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(gr).all() for gr in grads)
    assert sum(gr.abs().sum() for gr in grads) > 0


def test_r1_double_backward(nets: tuple[Generator, Discriminator]) -> None:
    _, d = nets
    d.zero_grad(set_to_none=True)
    real = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(real).sum(), real, create_graph=True)
    grad.square().sum([1, 2, 3]).mean().backward()
    _grads_ok(d)
    assert d.b32.fromrgb.weight.grad.abs().sum() > 0  # the penalty reaches the first layer
    d.zero_grad(set_to_none=True)


def test_path_length_double_backward(nets: tuple[Generator, Discriminator]) -> None:
    g, _ = nets
    g.zero_grad(set_to_none=True)
    with torch.no_grad():
        ws = g.mapping(torch.randn(2, g.z_dim))
    ws.requires_grad_(True)
    img = g.synthesis(ws)
    y = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
    (grad,) = torch.autograd.grad((img * y).sum(), ws, create_graph=True)
    lengths = grad.square().sum(2).mean(1).sqrt()  # [N]
    (lengths - 1).square().mean().backward()
    _grads_ok(g.synthesis)
    assert g.synthesis.b4.conv1.affine.weight.grad.abs().sum() > 0
    g.zero_grad(set_to_none=True)


# --- 4. FIR resampling -----------------------------------------------------------------------------------------------


def test_fir_gain_and_roundtrip() -> None:
    f = fir_kernel().double()
    assert f.shape == (4,) and math.isclose(f.sum().item(), 1.0)
    assert torch.allclose(f, f.flip(0))  # symmetric: correlation == convolution
    ones = torch.ones(1, 2, 16, 16, dtype=torch.float64)
    assert torch.allclose(upsample2d(ones, f)[..., 2:-2, 2:-2], torch.ones(1, 2, 28, 28, dtype=torch.float64))
    assert torch.allclose(downsample2d(ones, f)[..., 1:-1, 1:-1], torch.ones(1, 2, 6, 6, dtype=torch.float64))

    # A smooth image (ramp + slow sinusoid) survives up -> down; the ramp alone comes back exactly (no half-pixel
    # shift anywhere), away from the zero-padded border.
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    ramp = (0.05 * xx - 0.03 * yy).double()[None, None]
    assert torch.allclose(downsample2d(upsample2d(ramp, f), f)[..., 2:-2, 2:-2], ramp[..., 2:-2, 2:-2], atol=1e-6)
    smooth = ramp + 0.5 * torch.sin(2 * math.pi * xx / 16).double() * torch.cos(2 * math.pi * yy / 20).double()
    back = downsample2d(upsample2d(smooth, f), f)
    assert (back - smooth)[..., 2:-2, 2:-2].abs().max() < 0.05

    # The fused up-conv (transposed conv + FIR) equals zero insertion + FIR + 3x3 conv away from the border.
    x = torch.randn(2, 5, 8, 8, dtype=torch.float64)
    w = torch.randn(6, 5, 3, 3, dtype=torch.float64)
    fused = modulated_conv2d(x, w, torch.ones(2, 5, dtype=torch.float64), demodulate=False, up=True, f=f)
    plain = F.conv2d(upsample2d(x, f), w, padding=1)
    assert fused.shape == (2, 6, 16, 16)
    assert torch.allclose(fused[..., 2:-2, 2:-2], plain[..., 2:-2, 2:-2])


@pytest.mark.parametrize(
    ("pad", "gain", "stride"), [((1, 1), 1.0, 2), ((2, 2), 1.0, 1), ((1, 1), 4.0, 1), ((2, 1), 3.0, 2)]
)
def test_fir_equals_the_2d_conv_it_replaces(pad: tuple[int, int], gain: float, stride: int) -> None:
    """The separable shifted-slice FIR is the single-channel conv with the outer-product kernel, and upsample2d the
    stride-2 transposed conv (the formulations used before: same numbers, a fraction of the CPU backward cost)."""
    f = fir_kernel().double()
    f2 = torch.outer(f, f)[None, None]
    x = torch.randn(2, 3, 9, 10, dtype=torch.float64)
    ref = F.conv2d(
        F.pad(x, [pad[0], pad[1], pad[0], pad[1]]).reshape(6, 1, 9 + sum(pad), 10 + sum(pad)), f2 * gain, stride=stride
    )
    assert torch.allclose(fir_filter(x, f, pad, gain, stride), ref.reshape(2, 3, *ref.shape[2:]))
    up = F.conv_transpose2d(x.reshape(6, 1, 9, 10), f2 * 4, stride=2, padding=1).reshape(2, 3, 18, 20)
    assert torch.allclose(upsample2d(x, f), up)
    x.requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda t: fir_filter(t, f, pad, gain, stride).square(), (x,))
    assert torch.autograd.gradgradcheck(lambda t: upsample2d(t, f).square(), (x,))


# --- 5. config resolution --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("res", "batch", "gamma", "ema"), [(64, 32, 0.0256, 10.0), (128, 32, 0.1024, 10.0), (256, 16, 0.8192, 5.0)]
)
def test_resolve_auto(res: int, batch: int, gamma: float, ema: float) -> None:
    cfg = resolve_gan_config(GanConfig(resolution=res))
    assert (cfg.batch, cfg.mbstd_group, cfg.mapping_layers, cfg.channel_base, cfg.channel_max) == (
        batch,
        4,
        2,
        16384,
        512,
    )
    assert math.isclose(cfg.gamma, gamma) and math.isclose(cfg.ema_kimg, ema) and cfg.lr == 0.0025


def test_resolve_presets_overrides_and_errors() -> None:
    user = resolve_gan_config(GanConfig(resolution=128, gamma=2.0, channel_max=256, batch=8))
    assert (user.gamma, user.channel_max, user.batch) == (2.0, 256, 8)
    assert math.isclose(user.ema_kimg, 2.5) and user.mbstd_group == 4  # derived from the user's batch
    sg2 = resolve_gan_config(GanConfig(resolution=256, cfg="stylegan2"))
    assert (sg2.mapping_layers, sg2.channel_base, sg2.batch, sg2.gamma, sg2.lr, sg2.ema_rampup) == (
        8,
        32768,
        32,
        10.0,
        0.002,
        0.0,
    )
    cpu = resolve_gan_config(GanConfig(resolution=64, cfg="cpu"))
    assert (cpu.channel_base, cpu.channel_max, cpu.batch, cpu.mbstd_group) == (2048, 128, 16, 4)
    assert math.isclose(cpu.gamma, 0.0002 * 64 * 64 / 16) and math.isclose(cpu.ema_kimg, 5.0)
    assert resolve_gan_config(GanConfig(resolution=1024)).lr == 0.002
    assert resolve_gan_config(GanConfig(resolution=256), world=8).batch == 64  # min(8 * 16, 64)
    for bad in (48, 16, 2048):
        with pytest.raises(ValueError, match="power of two"):
            resolve_gan_config(GanConfig(resolution=bad))
    with pytest.raises(ValueError, match="auto, cpu, stylegan2, paper256"):
        resolve_gan_config(GanConfig(cfg="paper1024"))
    assert resolve_gan_config(GanConfig(resolution=256, cfg="paper256", batch=4)).mbstd_group == 8  # D uses min(8, 4)
    with pytest.raises(ValueError, match="minibatch-stddev group 4"):
        resolve_gan_config(GanConfig(batch=6))
    with pytest.raises(ValueError, match="divisible by 2 processes"):
        resolve_gan_config(GanConfig(batch=7), world=2)
    with pytest.raises(ValueError, match="resolve_gan_config"):
        build_networks(GanConfig())


# --- 6. bf16 autocast ------------------------------------------------------------------------------------------------


def test_bf16_autocast_forward(nets: tuple[Generator, Discriminator]) -> None:
    g, d = nets
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        img = g(torch.randn(4, g.z_dim))
        logits = d(img)
    assert img.dtype == logits.dtype == torch.float32
    assert img.shape == (4, 3, 32, 32) and logits.shape == (4, 1)
    assert torch.isfinite(img).all() and torch.isfinite(logits).all()
