"""StyleGAN2 generator and discriminator (the StyleGAN2-ADA configuration), in plain PyTorch.

Facts (layer list, formulas, configs, parameter counts) are from ../shared/reference/stylegan2-ada-notes.md §1, §2,
§4, §7; the code is our own. Tensors are NCHW; images are [N,3,R,R] in about [-1,1].

Conventions:

- Equalised learning rate: every weight is stored N(0,1) and scaled at run time by 1/sqrt(fan_in) (times the lr
  multiplier for the mapping MLP), so Adam's step size is the same for every layer. Where demodulation follows, the
  scale cancels and is left out.
- Resampling uses the separable [1,3,3,1] FIR low-pass, normalised to unit DC gain (x4 for 2-D upsampling, which
  puts zeros between samples). The filter is symmetric, so correlation (what ``conv2d`` does) equals convolution.
  Samples are pixel-centred: upsampled pixels 2i, 2i+1 straddle input pixel i; a downsampled pixel i sits at input
  position 2i+0.5.
- Up-convolution (conv0 of every G block above 4x4) = stride-2 transposed 3x3 conv, then the FIR blur (gain 4):
  the same operator as "insert zeros, FIR, 3x3 conv" (away from the border) at a quarter of the conv cost. The zeros
  hold the spectrum's images; the low-pass removes them before anything non-linear, so the result is alias-free.
- Down-convolution (D) = FIR blur at full resolution, then a stride-2 conv; the 1x1 residual path is FIR
  downsampling (blur + stride 2), then a 1x1 conv.
- Modulated conv uses the "non-fused" form: scale the activations by the styles, run one ordinary conv for the whole
  batch, scale by 1/sigma. sigma is computed as styles^2 @ sum_k(w^2) (no [N,O,I,k,k] weight tensor is built).
- Everything is differentiable twice (R1 and path-length regularisation) and runs under bf16 autocast: bias, noise
  and demodulation coefficients follow the activation dtype; the running RGB image of G, the minibatch-stddev
  statistic and both networks' outputs are kept in fp32.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facelab.config import GAN_SMALL_DATA_FACES, GanConfig
from facelab.imaging.diffaugment import parse_policy

GAN_CFGS = ("by-size", "small", "auto", "cpu", "stylegan2", "paper256")
CONV_CLAMP = 256  # activation clamp after every conv of G and D (StyleGAN2-ADA's conv_clamp)
LRELU_GAIN = math.sqrt(2.0)  # keeps the activation variance of a leaky ReLU(0.2) layer at about 1
# the cpu preset's feature maps, which the small preset also takes on a CPU (with batch CPU_SMALL_BATCH)
CPU_WIDTHS = {"channel_base": 2048, "channel_max": 128}
CPU_SMALL_BATCH = 8
DIFFAUG_POLICY = "color,translation,cutout"  # Zhao et al. 2020's default policy (their low-shot runs use it)
# R1 strength for few faces: the ADA heuristic 0.0002 R^2 / batch (stylegan2-ada train.py, cfg auto) is scaled up as
# the faceset shrinks, log-linearly in the number of faces from x1 at GAN_SMALL_DATA_FACES to x LOW_SHOT_GAMMA_SCALE
# at LOW_SHOT_FACES and below. The end point is the DiffAugment authors' low-shot setting (their StyleGAN2-ADA-based
# PyTorch port, cfg low_shot: gamma 10 at 256 px, batch 8, for 100-image sets), where the heuristic would give
# 0.0002 * 256^2 / 8 = 1.6384. The interpolation between the two published settings is ours.
LOW_SHOT_FACES = 100
LOW_SHOT_GAMMA_SCALE = 10 / (0.0002 * 256**2 / 8)  # 6.10


# --------------------------------------------------------------------------------------------------------------------
# Configuration


def _check_resolution(res: int, lo: int, hi: int) -> None:
    if not isinstance(res, int) or res < lo or res > hi or res & (res - 1):
        raise ValueError(f"GAN resolution {res!r}: must be a power of two in [{lo}, {hi}]")


def gamma_scale(faces: int) -> float:
    """The small-data R1 factor for a faceset of ``faces`` real faces (see ``LOW_SHOT_GAMMA_SCALE``): 1 at
    ``GAN_SMALL_DATA_FACES`` and above, ``LOW_SHOT_GAMMA_SCALE`` at ``LOW_SHOT_FACES`` and below, log-linear between."""
    t = math.log(GAN_SMALL_DATA_FACES / max(faces, 1)) / math.log(GAN_SMALL_DATA_FACES / LOW_SHOT_FACES)
    return float(LOW_SHOT_GAMMA_SCALE ** min(max(t, 0.0), 1.0))


def choose_cfg(cfg: str, faces: int | None) -> str:
    """The preset ``cfg`` names: ``by-size`` is ``small`` for fewer than ``GAN_SMALL_DATA_FACES`` real faces, else
    ``auto`` (also ``auto`` when the faceset size is not known); any other name is itself."""
    if cfg != "by-size":
        return cfg
    return "small" if faces is not None and faces < GAN_SMALL_DATA_FACES else "auto"


def resolve_gan_config(cfg: GanConfig, world: int = 1, faces: int | None = None, cpu: bool = False) -> GanConfig:
    """A copy of ``cfg`` with every derived field filled from the preset ``cfg.cfg`` (notes §4); ``world`` =
    processes, ``faces`` = real faces the generator learns (picks the preset of ``by-size`` and small's gamma),
    ``cpu`` = training runs on a CPU (``small`` then takes the widths and batch measured to learn fastest there).

    The result names the preset it used (``by-size`` becomes ``small`` or ``auto``). 0 fields, and ``aug`` /
    ``diffaug`` "auto" and a negative ``pl_weight``, take the preset's value; anything else the user set wins.
    ``batch`` is the total over all processes. Derived fields (``mbstd_group``; for auto/cpu/small also ``gamma``
    and ``ema_kimg``) follow the final batch, so a user batch moves them unless they are set too (NVlabs' train.py
    keeps the preset batch's gamma). ``ema_rampup`` left at its dataclass default (0.05) becomes the preset's (0 =
    off for stylegan2/paper256); any other value is kept. Presets: auto = StyleGAN2-ADA's; cpu = auto with narrow
    channels (base 2048, max 128) and batch 16; stylegan2 = config F; paper256 = the ADA paper's 256-px setting;
    small = the few-shot settings below (every one with its source).
    """
    res = cfg.resolution
    _check_resolution(res, 32, 1024)
    if cfg.cfg not in GAN_CFGS:
        raise ValueError(f"unknown GAN cfg {cfg.cfg!r}; valid: {', '.join(GAN_CFGS)}")
    if world < 1:
        raise ValueError(f"world {world}: must be >= 1")
    name = choose_cfg(cfg.cfg, faces)

    spec: dict[str, float]
    aug, diffaug, pl_weight = "ada", "none", 2.0  # StyleGAN2-ADA's defaults (notes §3, §6)
    gamma_factor = 1.0
    if name == "auto":
        spec = dict(
            mapping_layers=2,
            channel_base=16384 if res < 512 else 32768,
            channel_max=512,
            batch=max(min(world * min(4096 // res, 32), 64), world),
            lr=0.002 if res >= 1024 else 0.0025,
            ema_rampup=0.05,
        )
    elif name == "small":
        spec = dict(
            # 2 layers: StyleGAN2-ADA's auto and cifar configs, and the DiffAugment authors' low_shot config
            mapping_layers=2,
            # half of auto's feature maps at <= 16 px, a quarter above (4096 // r, at most 256): FastGAN (Liu et al.
            # 2021) shows a light network is enough for few-shot sets; ours, so that a resumable half-precision
            # checkpoint stays under 60 MiB at 128 px (50 MiB) and a kimg costs less
            channel_base=4096,
            channel_max=256,
            # batch, lr, EMA half-life (batch * 10 / 32 kimg) and its 5 % ramp-up: StyleGAN2-ADA's auto config
            batch=max(min(world * min(4096 // res, 32), 64), world),
            lr=0.002 if res >= 1024 else 0.0025,
            ema_rampup=0.05,
        )
        # DiffAugment color,translation,cutout on reals and fakes, ADA off: what the DiffAugment authors' port does
        # when DiffAugment is on (ADA's own target 0.6 stays the default of --aug ada)
        aug, diffaug = "noaug", DIFFAUG_POLICY
        # path length off: StyleGAN2-ADA's cifar config turns it off too, and it is the costliest phase (G's double
        # backward, on half the batch every 4th step)
        pl_weight = 0.0
        # R1 by resolution (ADA's heuristic, below) and faceset size (gamma_scale)
        gamma_factor = gamma_scale(faces if faces is not None else GAN_SMALL_DATA_FACES)
        if cpu:
            # the cpu preset's widths (a quarter of the convolution work) and batch 8: on a 2-core CPU with native
            # bf16 these drew the src in 54 minutes (README, issue 15) where small's own widths reach a third of the kimg
            spec.update(CPU_WIDTHS, batch=world * max(CPU_SMALL_BATCH // world, 1))
    elif name == "cpu":
        spec = dict(mapping_layers=2, **CPU_WIDTHS, batch=16, lr=0.0025, ema_rampup=0.05)
    elif name == "stylegan2":
        spec = dict(mapping_layers=8, channel_base=32768, channel_max=512, batch=32, mbstd_group=4, lr=0.002)
        spec.update(gamma=10.0, ema_kimg=10.0, ema_rampup=0.0)
    else:  # paper256
        spec = dict(mapping_layers=8, channel_base=16384, channel_max=512, batch=64, mbstd_group=8, lr=0.0025)
        spec.update(gamma=1.0, ema_kimg=20.0, ema_rampup=0.0)

    batch = cfg.batch or spec["batch"]
    if batch % world:
        raise ValueError(f"GAN batch {batch} is not divisible by {world} processes; set batch explicitly")
    if "mbstd_group" not in spec:  # auto/cpu/small: batch-derived fields
        gamma = 0.0002 * res * res / batch * gamma_factor
        spec.update(mbstd_group=min(batch // world, 4), gamma=gamma, ema_kimg=batch * 10 / 32)

    derived = ("mapping_layers", "channel_base", "channel_max", "mbstd_group", "lr", "gamma", "ema_kimg")
    default_rampup = next(f.default for f in dataclasses.fields(GanConfig) if f.name == "ema_rampup")
    out = dataclasses.replace(
        cfg,
        cfg=name,
        z_dim=cfg.z_dim or 512,
        w_dim=cfg.w_dim or 512,
        batch=batch,
        **{k: getattr(cfg, k) or spec[k] for k in derived},  # a non-zero user value wins
        ema_rampup=spec["ema_rampup"] if cfg.ema_rampup == default_rampup else cfg.ema_rampup,
        aug=aug if cfg.aug == "auto" else cfg.aug,
        diffaug=diffaug if cfg.diffaug == "auto" else (",".join(parse_policy(cfg.diffaug)) or "none"),
        pl_weight=pl_weight if cfg.pl_weight < 0 else cfg.pl_weight,
    )
    if out.aug not in ("ada", "fixed", "noaug"):
        raise ValueError(f"aug must be ada, fixed, noaug or auto, not {out.aug!r}")
    if out.checkpoint_precision not in ("half", "fp32"):
        raise ValueError(f"checkpoint_precision must be half or fp32, not {out.checkpoint_precision!r}")
    group = min(out.mbstd_group, batch // world)  # what MinibatchStd will use
    if (batch // world) % group:
        raise ValueError(f"per-process batch {batch // world} is not a multiple of the minibatch-stddev group {group}")
    return out


def _check_resolved(cfg: GanConfig) -> None:
    missing = [k for k in ("mapping_layers", "channel_base", "channel_max", "mbstd_group") if not getattr(cfg, k)]
    if missing:
        raise ValueError(f"GanConfig not resolved ({', '.join(missing)} = 0); call resolve_gan_config first")


def channels(res: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at resolution ``res``: C(r) = min(channel_base // r, channel_max)."""
    return min(channel_base // res, channel_max)


# --------------------------------------------------------------------------------------------------------------------
# Resampling (FIR [1,3,3,1])


def fir_kernel(taps: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)) -> Tensor:
    """1-D low-pass taps [k] summing to 1 (unit DC gain); the 2-D filter is their outer product (separable)."""
    k = torch.tensor(taps, dtype=torch.float32)
    return k / k.sum()


def _fir_1d(x: Tensor, f: Tensor, dim: int, stride: int) -> Tensor:
    """Correlate ``x`` (already padded) with taps ``f`` [k] along ``dim`` (-1 or -2), keeping every ``stride``-th.

    A sum of shifted slices rather than a conv: as a single-channel or depthwise conv, oneDNN's backward and double
    backward of these tiny kernels took about half of a CPU training step; slices and adds cost a few elementwise
    passes and differentiate twice like any other op.
    """
    n_out = (x.shape[dim] - f.shape[0]) // stride + 1
    y: Tensor | None = None
    for k in range(f.shape[0]):
        xs = x.narrow(dim, k, (n_out - 1) * stride + 1)
        if stride > 1:
            xs = xs[..., ::stride] if dim == -1 else xs[..., ::stride, :]
        y = xs * f[k] if y is None else torch.addcmul(y, xs, f[k])
    assert y is not None
    return y


def fir_filter(x: Tensor, f: Tensor, pad: tuple[int, int], gain: float = 1.0, stride: int = 1) -> Tensor:
    """Per-channel FIR: zero-pad each spatial side by ``pad`` (before, after), filter with the separable 2-D filter
    outer(f, f) * ``gain`` (taps ``f`` [k]), subsample by ``stride``: [N,C,H,W] -> [N,C,H',W']."""
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    f = f.to(x.dtype)
    return _fir_1d(_fir_1d(x, f * gain, -2, stride), f, -1, stride)


def upsample2d(x: Tensor, f: Tensor) -> Tensor:
    """[N,C,H,W] -> [N,C,2H,2W]: zero insertion + FIR (gain 4). Output 2i and 2i+1 get 3/4 of x[i] plus 1/4 of x[i-1]
    or x[i+1] (zero-inserted u[2i] = x[i]; padding (2, 1) centres the 4 taps on the pair)."""
    n, c, h, w = x.shape
    u = torch.zeros(n, c, h, 2, w, 2, dtype=x.dtype, device=x.device)
    u[:, :, :, 0, :, 0] = x
    return fir_filter(u.reshape(n, c, 2 * h, 2 * w), f, pad=(2, 1), gain=4)


def downsample2d(x: Tensor, f: Tensor) -> Tensor:
    """[N,C,H,W] -> [N,C,H/2,W/2]: FIR low-pass then keep every other sample (output i centred at input 2i+0.5)."""
    return fir_filter(x, f, pad=(1, 1), stride=2)


# --------------------------------------------------------------------------------------------------------------------
# Layers


def bias_act(x: Tensor, b: Tensor | None, act: str = "linear", gain: float = 1.0, clamp: float | None = None) -> Tensor:
    """x + b (per channel, dim 1), then leaky ReLU 0.2 * sqrt(2) (``act="lrelu"``), * gain, clamp to +-clamp."""
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, *([1] * (x.ndim - 2)))
    if act == "lrelu":
        x = F.leaky_relu(x, 0.2)
        gain = gain * LRELU_GAIN
    elif act != "linear":
        raise ValueError(f"unknown activation {act!r}")
    if gain != 1:
        x = x * gain
    if clamp is not None:  # keeps reduced-precision activations in range; inactive in a healthy fp32 run
        x = x.clamp(-clamp, clamp)
    return x


class FullyConnectedLayer(nn.Module):
    """[N,in] -> [N,out]. Weight stored N(0,1)/lr_mul, used as weight * lr_mul/sqrt(in); bias used as bias * lr_mul,
    so an lr multiplier < 1 slows the layer down by that factor under Adam. Initial effective bias = ``bias_init``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], bias_init / lr_multiplier)) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight * self.weight_gain
        b = self.bias * self.bias_gain if self.bias is not None else None
        if self.activation == "linear":
            return F.linear(x, w, b)
        return bias_act(F.linear(x, w), b, self.activation)

    def extra_repr(self) -> str:
        return f"in={self.weight.shape[1]}, out={self.weight.shape[0]}, act={self.activation}"


class Conv2dLayer(nn.Module):
    """Plain equalised-lr conv for D: [N,in,H,W] -> [N,out,H,W], or [N,out,H/2,W/2] with ``down``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        down: bool = False,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.activation, self.down, self.conv_clamp = activation, down, conv_clamp
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        if down:
            self.register_buffer("resample_filter", fir_kernel(), persistent=False)

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        w = self.weight * self.weight_gain
        k = self.kernel_size
        if not self.down:
            x = F.conv2d(x, w, padding=k // 2)
        elif k == 1:
            x = F.conv2d(downsample2d(x, self.resample_filter), w)
        else:
            # Blur at full resolution, then a stride-2 conv. Pad (k+1)//2 each side: length H+1 after the blur (k=3)
            # and output i centred at input 2i+0.5, like downsample2d.
            p = (k + 1) // 2
            x = F.conv2d(fir_filter(x, self.resample_filter, pad=(p, p)), w, stride=2)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, self.activation, gain=gain, clamp=clamp)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"in={i}, out={o}, k={k}, act={self.activation}, down={self.down}"


def modulated_conv2d(
    x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool = True, up: bool = False, f: Tensor | None = None
) -> Tensor:
    """x [N,I,H,W], weight [O,I,k,k], styles [N,I] -> [N,O,H,W] ([N,O,2H,2W] with ``up``; needs the FIR ``f``).

    Equivalent to convolving each sample with w'_oik = w_oik * s_i, divided by sigma_o = sqrt(sum_ik w'_oik^2) when
    ``demodulate`` (restores unit output variance for unit input variance, whatever the style's magnitude).
    """
    k = weight.shape[-1]
    x = x * styles.to(x.dtype)[:, :, None, None]
    if up:
        assert k == 3 and f is not None, "up-convolution is implemented for 3x3 kernels with a resample filter"
        # conv_transpose2d inserts zeros and *convolves*; transposing I/O and flipping the kernel makes it the same
        # correlation conv2d would do on the zero-inserted image. Length 2H+1, then FIR pad (1,1) -> 2H, aligned
        # with upsample2d (so the RGB skip path and the features stay registered).
        x = F.conv_transpose2d(x, weight.transpose(0, 1).flip([2, 3]), stride=2)  # [N,O,2H+1,2W+1]
        x = fir_filter(x, f, pad=(1, 1), gain=4)  # [N,O,2H,2W]
    else:
        x = F.conv2d(x, weight, padding=k // 2)  # [N,O,H,W]
    if demodulate:
        sigma_sq = styles.square() @ weight.square().sum([2, 3]).T  # [N,O] = sum_i s_i^2 sum_k w_oik^2
        x = x * (sigma_sq + 1e-8).rsqrt().to(x.dtype)[:, :, None, None]
    return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv + per-pixel noise + bias + lrelu: ([N,I,H,W], w [N,w_dim]) -> [N,O,res,res]."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        up: bool = False,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.up, self.resolution, self.conv_clamp = up, resolution, conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)  # styles start at 1: plain conv at init
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))  # no runtime gain: demod cancels it
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))  # 0-dim, so it does not promote bf16 noise to fp32
        self.register_buffer("noise_const", torch.randn(resolution, resolution))  # [res,res] for noise_mode="const"
        if up:
            self.register_buffer("resample_filter", fir_kernel(), persistent=False)

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "random", gain: float = 1.0) -> Tensor:
        styles = self.affine(w)  # [N,I]
        x = modulated_conv2d(x, self.weight, styles, up=self.up, f=self.resample_filter if self.up else None)
        if noise_mode == "random":
            n, _, h, wd = x.shape
            x = x + torch.randn(n, 1, h, wd, device=x.device, dtype=x.dtype) * self.noise_strength
        elif noise_mode == "const":
            x = x + (self.noise_const * self.noise_strength).to(x.dtype)  # [res,res] broadcast over N and C
        elif noise_mode != "none":
            raise ValueError(f"noise_mode {noise_mode!r}: random, const or none")
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, "lrelu", gain=gain, clamp=clamp)

    def extra_repr(self) -> str:
        o, i, _, _ = self.weight.shape
        return f"in={i}, out={o}, res={self.resolution}, up={self.up}"


class ToRGBLayer(nn.Module):
    """1x1 modulated conv without demodulation: ([N,I,H,W], w) -> [N,3,H,W]; style * 1/sqrt(I) is the lr gain."""

    def __init__(self, in_channels: int, w_dim: int, img_channels: int = 3, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(img_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(img_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        styles = self.affine(w) * self.weight_gain  # [N,I]
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return bias_act(x, self.bias, clamp=self.conv_clamp)


# --------------------------------------------------------------------------------------------------------------------
# Generator


class MappingNetwork(nn.Module):
    """z [N,z_dim] -> ws [N,num_ws,w_dim]: RMS-normalised z through an lrelu MLP (lr multiplier 0.01), broadcast."""

    def __init__(
        self,
        z_dim: int,
        w_dim: int,
        num_ws: int,
        num_layers: int = 2,
        lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.995,
    ) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.w_avg_beta = z_dim, w_dim, num_ws, w_avg_beta
        features = [z_dim] + [w_dim] * num_layers
        for i in range(num_layers):
            layer = FullyConnectedLayer(features[i], features[i + 1], activation="lrelu", lr_multiplier=lr_multiplier)
            setattr(self, f"fc{i}", layer)
        self.num_layers = num_layers
        self.register_buffer("w_avg", torch.zeros(w_dim))  # running mean of w: the truncation centre

    def forward(
        self,
        z: Tensor,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> Tensor:
        x = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()  # [N,z_dim], RMS 1: z's scale carries no meaning
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)  # [N,w_dim]
        if update_emas:  # training: w_avg <- beta * w_avg + (1 - beta) * mean_batch(w)
            with torch.no_grad():
                self.w_avg.copy_(x.detach().float().mean(0).lerp(self.w_avg, self.w_avg_beta))
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)  # [N,num_ws,w_dim]
        if truncation_psi != 1:  # w' = w_avg + psi (w - w_avg), on the first `cutoff` ws or all of them
            avg = self.w_avg.to(ws.dtype)
            cut = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws = torch.cat([avg.lerp(ws[:, :cut], truncation_psi), ws[:, cut:]], 1)
        return ws

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}, w_avg_beta={self.w_avg_beta}"


class ResolutionBlock(nn.Module):
    """Base of G's and D's per-resolution blocks; ``in_channels == 0`` marks the block at the image end of the
    network (G's learned const input, D's fromRGB)."""

    def __init__(self, in_channels: int, resolution: int) -> None:
        super().__init__()
        self.in_channels, self.resolution = in_channels, resolution

    def extra_repr(self) -> str:
        return f"res={self.resolution}"


class SynthesisBlock(ResolutionBlock):
    """One resolution of G. 4x4: learned const -> conv1 -> toRGB. Above: conv0 (2x up) -> conv1 -> toRGB. The
    running RGB image is upsampled with the FIR filter and the block's toRGB output added (skip architecture).

    (x [N,I,res/2,res/2] | None, img [N,3,res/2,res/2] | None, ws [N,num_conv+1,w_dim]) -> ([N,O,res,res], img).
    """

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, resolution: int, conv_clamp: float | None = None
    ) -> None:
        super().__init__(in_channels, resolution)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))  # [O,4,4]
            self.num_conv = 1
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True, conv_clamp=conv_clamp)
            self.num_conv = 2
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp)
        self.torgb = ToRGBLayer(out_channels, w_dim, conv_clamp=conv_clamp)
        self.num_torgb = 1
        self.register_buffer("resample_filter", fir_kernel(), persistent=False)

    def forward(
        self, x: Tensor | None, img: Tensor | None, ws: Tensor, noise_mode: str = "random"
    ) -> tuple[Tensor, Tensor]:
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)  # [N,O,4,4]
            x = self.conv1(x, ws[:, 0], noise_mode)
        else:
            x = self.conv0(x, ws[:, 0], noise_mode)  # [N,O,res,res]
            x = self.conv1(x, ws[:, 1], noise_mode)
        y = self.torgb(x, ws[:, self.num_conv]).float()  # [N,3,res,res]
        if img is None:
            return x, y
        with torch.autocast(img.device.type, enabled=False):  # the output image accumulates in fp32
            img = upsample2d(img, self.resample_filter)
        return x, img + y


class SynthesisNetwork(nn.Module):
    """ws [N,num_ws,w_dim] -> img [N,3,R,R]; blocks b4, b8, ..., bR with C(r) channels.

    num_ws = 2*log2(R) - 2: one w per conv; a block's toRGB shares its w with the next block's conv0 (the last
    toRGB gets its own).
    """

    def __init__(
        self, w_dim: int, img_resolution: int, channel_base: int, channel_max: int, conv_clamp: float | None
    ) -> None:
        super().__init__()
        _check_resolution(img_resolution, 4, 1 << 14)
        self.w_dim, self.img_resolution = w_dim, img_resolution
        self.block_resolutions = [2**i for i in range(2, int(math.log2(img_resolution)) + 1)]
        self.num_ws = 0
        for res in self.block_resolutions:
            in_ch = channels(res // 2, channel_base, channel_max) if res > 4 else 0
            block = SynthesisBlock(in_ch, channels(res, channel_base, channel_max), w_dim, res, conv_clamp)
            setattr(self, f"b{res}", block)
            self.num_ws += block.num_conv
        self.num_ws += 1  # the last toRGB

    def forward(self, ws: Tensor, noise_mode: str = "random") -> Tensor:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws {tuple(ws.shape)}: expected [N,{self.num_ws},{self.w_dim}]")
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block: SynthesisBlock = getattr(self, f"b{res}")
            x, img = block(x, img, ws.narrow(1, w_idx, block.num_conv + block.num_torgb), noise_mode)
            w_idx += block.num_conv
        assert img is not None
        return img


class Generator(nn.Module):
    """z [N,z_dim] -> img [N,3,R,R] in about [-1,1]: ``mapping`` then ``synthesis``. The architecture comes from a
    resolved config (see :func:`resolve_gan_config`): z_dim, w_dim, resolution, channel_base/max, mapping_layers."""

    def __init__(self, cfg: GanConfig, conv_clamp: float | None = CONV_CLAMP) -> None:
        super().__init__()
        _check_resolved(cfg)
        self.z_dim, self.w_dim, self.img_resolution = cfg.z_dim, cfg.w_dim, cfg.resolution
        self.synthesis = SynthesisNetwork(cfg.w_dim, cfg.resolution, cfg.channel_base, cfg.channel_max, conv_clamp)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(cfg.z_dim, cfg.w_dim, self.num_ws, cfg.mapping_layers)

    def forward(
        self,
        z: Tensor,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "random",
        update_emas: bool = False,
    ) -> Tensor:
        ws = self.mapping(z, truncation_psi, truncation_cutoff, update_emas=update_emas)  # [N,num_ws,w_dim]
        return self.synthesis(ws, noise_mode=noise_mode)  # [N,3,R,R]


# --------------------------------------------------------------------------------------------------------------------
# Discriminator


class DiscriminatorBlock(ResolutionBlock):
    """ResNet block at ``resolution``: (x [N,T,res,res] | None, img [N,3,res,res]) -> [N,O,res/2,res/2].

    in_channels == 0 marks the top block, which reads the image through fromRGB. Main path conv0 (T->T) then conv1
    (T->O, 2x down); residual path 1x1 no-bias conv with 2x down; both * sqrt(0.5) so the sum keeps unit variance.
    """

    def __init__(
        self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int, conv_clamp: float | None = None
    ) -> None:
        super().__init__(in_channels, resolution)
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(3, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=True, conv_clamp=conv_clamp)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=True)

    def forward(self, x: Tensor | None, img: Tensor) -> Tensor:
        if self.in_channels == 0:
            x = self.fromrgb(img)  # [N,T,res,res]
        assert x is not None
        y = self.skip(x, gain=math.sqrt(0.5))  # [N,O,res/2,res/2]
        x = self.conv0(x)  # [N,T,res,res]
        x = self.conv1(x, gain=math.sqrt(0.5))  # [N,O,res/2,res/2]
        return y + x


class MinibatchStd(nn.Module):
    """[N,C,H,W] -> [N,C+F,H,W]: per group of G = min(group_size, N) samples (sample i in group i mod N/G), the std
    over the group of every feature, averaged to one scalar per group (per channel slice of F), appended as
    channels. Lets D see the batch's diversity, which discourages mode collapse."""

    def __init__(self, group_size: int = 4, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g, nf = min(self.group_size, n), self.num_channels
        if n % g:
            raise ValueError(f"minibatch-stddev: batch {n} is not a multiple of the group size {g}")
        y = x.float().reshape(g, -1, nf, c // nf, h, w)  # [G,n,F,c,H,W]; statistics in fp32
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt()  # [n,F,c,H,W] std over the group
        y = y.mean([2, 3, 4]).reshape(-1, nf, 1, 1).repeat(g, 1, h, w)  # [N,F,H,W]
        return torch.cat([x, y.to(x.dtype)], 1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class DiscriminatorEpilogue(nn.Module):
    """[N,C,4,4] -> logits [N,1]: minibatch-stddev, 3x3 conv (C+1 -> C), FC (16C -> C, lrelu), FC (C -> 1)."""

    def __init__(
        self, in_channels: int, resolution: int = 4, mbstd_group: int = 4, conv_clamp: float | None = None
    ) -> None:
        super().__init__()
        self.mbstd = MinibatchStd(mbstd_group, 1)
        self.conv = Conv2dLayer(in_channels + 1, in_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(self.mbstd(x))  # [N,C,4,4]
        x = self.fc(x.flatten(1))  # [N,C]
        return self.out(x)  # [N,1]


class Discriminator(nn.Module):
    """img [N,3,R,R] in [-1,1] -> logits [N,1] (fp32). Blocks bR ... b8 (resnet), then the 4x4 epilogue ``b4``.
    The architecture comes from a resolved config: resolution, channel_base/max, mbstd_group."""

    def __init__(self, cfg: GanConfig, conv_clamp: float | None = CONV_CLAMP) -> None:
        super().__init__()
        _check_resolved(cfg)
        img_resolution, channel_base, channel_max = cfg.resolution, cfg.channel_base, cfg.channel_max
        _check_resolution(img_resolution, 8, 1 << 14)
        self.img_resolution = img_resolution
        self.block_resolutions = [2**i for i in range(int(math.log2(img_resolution)), 2, -1)]  # R, R/2, ..., 8
        for res in self.block_resolutions:
            in_ch = channels(res, channel_base, channel_max) if res < img_resolution else 0
            tmp_ch, out_ch = channels(res, channel_base, channel_max), channels(res // 2, channel_base, channel_max)
            setattr(self, f"b{res}", DiscriminatorBlock(in_ch, tmp_ch, out_ch, res, conv_clamp))
        self.b4 = DiscriminatorEpilogue(channels(4, channel_base, channel_max), 4, cfg.mbstd_group, conv_clamp)

    def forward(self, img: Tensor) -> Tensor:
        x = None
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x, img)  # [N,C(res/2),res/2,res/2]
        assert x is not None
        return self.b4(x).float()  # [N,1]


# --------------------------------------------------------------------------------------------------------------------
# Helpers


def build_networks(cfg: GanConfig) -> tuple[Generator, Discriminator]:
    """G and D for an already resolved config (see :func:`resolve_gan_config`)."""
    return Generator(cfg), Discriminator(cfg)


def param_counts(module: nn.Module) -> dict[str, int]:
    """Parameters per top-level child (``(self)`` for the module's own, if any) and ``total``."""
    counts = {name: sum(p.numel() for p in child.parameters()) for name, child in module.named_children()}
    own = sum(p.numel() for p in module.parameters(recurse=False))
    if own:
        counts["(self)"] = own
    counts["total"] = sum(p.numel() for p in module.parameters())
    return counts
