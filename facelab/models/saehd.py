"""SAEHD-class swap model (DF and LIAE, options u/d/t/c), a clean PyTorch build of the architecture DFL ships.

A network is a few small blocks composed per resolution. Tensors are NCHW; images are RGB float in [0, 1];
every head ends in a sigmoid. Parameter counts match DFL's own model exactly (see tests/test_models.py).

Shapes for the default ``liae-ud`` @ 128 (ae 256, e 64, d 64, dm 22), batch N::

    encoder   [N,3,128,128] -> [N,64,64,64] -> [N,128,32,32] -> [N,256,16,16] -> [N,512,8,8] -> flat [N,32768]
    inter_*   [N,32768] -> [N,256] -> [N,8192] -> [N,512,4,4] -> upscale -> [N,512,8,8]
    code      cat(inter_*, inter_*) on channels -> [N,1024,8,8]
    decoder   rgb: [N,512,16,16] -> [N,256,32,32] -> [N,128,64,64] -> 4 heads [N,12,64,64] -> [N,3,128,128]
              mask: [N,176,16,16] -> [N,88,32,32] -> [N,44,64,64] -> [N,22,128,128] -> [N,1,128,128]
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor, nn

from facelab.config import ModelConfig
from facelab.errors import FacelabError

ARCHI_KINDS = ("df", "liae")
ARCHI_OPTIONS = "udtc"
MIN_RESOLUTION = 64
MAX_RESOLUTION = 512


class ModelConfigError(FacelabError, ValueError):
    """An archi string or model size the SAEHD builder cannot honour (a ValueError, and a CLI one-liner)."""


# --------------------------------------------------------------------------------------------------------------------
# Options and validation


def parse_archi(archi: str) -> tuple[str, set[str]]:
    """``"liae-ud"`` -> ``("liae", {"u", "d"})``. Raises ModelConfigError on anything else."""
    text = archi.strip().lower()
    kind, sep, opts = text.partition("-")
    if kind not in ARCHI_KINDS:
        raise ModelConfigError(f"archi {archi!r}: type must be one of {'/'.join(ARCHI_KINDS)} (e.g. 'liae-ud')")
    if sep and not opts:
        raise ModelConfigError(f"archi {archi!r}: nothing after '-'; write {kind!r} or e.g. '{kind}-ud'")
    unknown = sorted(set(opts) - set(ARCHI_OPTIONS))
    if unknown:
        raise ModelConfigError(
            f"archi {archi!r}: unknown option(s) {''.join(unknown)!r}; options are letters from {ARCHI_OPTIONS!r}"
        )
    if len(set(opts)) != len(opts):
        raise ModelConfigError(f"archi {archi!r}: an option letter is repeated")
    return kind, set(opts)


def validate(cfg: ModelConfig) -> None:
    """Check that ``cfg`` describes a buildable model; raises ModelConfigError with the reason."""
    _, opts = parse_archi(cfg.archi)
    res = cfg.resolution
    step = 32 if "d" in opts else 16  # 'd' halves the bottleneck to res/32, so res must divide by 32
    if not isinstance(res, int) or not MIN_RESOLUTION <= res <= MAX_RESOLUTION:
        raise ModelConfigError(f"resolution {res!r}: must be an integer from {MIN_RESOLUTION} to {MAX_RESOLUTION}")
    if res % step:
        why = " (archi option 'd' needs a multiple of 32)" if step == 32 else ""
        lo = max(MIN_RESOLUTION, res // step * step)
        raise ModelConfigError(f"resolution {res}: must be a multiple of {step}{why}; try {lo}")
    for name in ("ae_dims", "e_dims", "d_dims", "d_mask_dims"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or value < 1:
            raise ModelConfigError(f"{name} {value!r}: must be a positive integer")


# --------------------------------------------------------------------------------------------------------------------
# Blocks


class CosActivation(nn.Module):
    """x * cos(x): the 'c' option's activation."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.cos(x)


def activation(cos: bool, slope: float = 0.1) -> nn.Module:
    # 'c' replaces every LeakyReLU (whatever its slope) with x*cos(x).
    return CosActivation() if cos else nn.LeakyReLU(slope)


def glorot_init(module: nn.Module) -> None:
    """TF defaults: Glorot-uniform weights, zero biases (apply with ``module.apply``)."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def conv(in_ch: int, out_ch: int, k: int, stride: int = 1) -> nn.Conv2d:
    """Conv with symmetric zero padding k//2 (k odd): output = ceil(input / stride)."""
    return nn.Conv2d(in_ch, out_ch, k, stride=stride, padding=k // 2)


class Downscale(nn.Module):
    """[N,in,H,W] -> [N,out,H/2,W/2] (ceil): conv k5 s2 + act."""

    def __init__(self, in_ch: int, out_ch: int, cos: bool = False) -> None:
        super().__init__()
        self.conv = conv(in_ch, out_ch, 5, stride=2)
        self.act = activation(cos)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv(x))


class Upscale(nn.Module):
    """[N,in,H,W] -> [N,out,2H,2W]: conv k3 to 4*out, act, pixel shuffle x2."""

    def __init__(self, in_ch: int, out_ch: int, cos: bool = False) -> None:
        super().__init__()
        self.conv = conv(in_ch, 4 * out_ch, 3)
        self.act = activation(cos)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: Tensor) -> Tensor:
        return self.shuffle(self.act(self.conv(x)))


class ResidualBlock(nn.Module):
    """[N,C,H,W] -> [N,C,H,W]: act(x + conv(act(conv(x)))), slope 0.2."""

    def __init__(self, ch: int, cos: bool = False) -> None:
        super().__init__()
        self.conv1 = conv(ch, ch, 3)
        self.act1 = activation(cos, 0.2)
        self.conv2 = conv(ch, ch, 3)
        self.act2 = activation(cos, 0.2)

    def forward(self, x: Tensor) -> Tensor:
        return self.act2(x + self.conv2(self.act1(self.conv1(x))))


def pixel_norm(x: Tensor, eps: float = 1e-6) -> Tensor:
    """[N,F] -> [N,F] scaled to unit RMS per sample (the 'u' option)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


# --------------------------------------------------------------------------------------------------------------------
# Networks


class Encoder(nn.Module):
    """[N,3,R,R] -> flat [N, 8e * r * r], r = R/16 (R/32 with 't')."""

    def __init__(self, in_ch: int, e_dims: int, deep: bool = False, norm: bool = False, cos: bool = False) -> None:
        super().__init__()
        e = e_dims
        if deep:  # 't': five downscales, a residual block after the first and the last
            layers: list[nn.Module] = [
                Downscale(in_ch, e, cos),
                ResidualBlock(e, cos),
                Downscale(e, 2 * e, cos),
                Downscale(2 * e, 4 * e, cos),
                Downscale(4 * e, 8 * e, cos),
                Downscale(8 * e, 8 * e, cos),
                ResidualBlock(8 * e, cos),
            ]
        else:
            layers = [
                Downscale(in_ch, e, cos),
                Downscale(e, 2 * e, cos),
                Downscale(2 * e, 4 * e, cos),
                Downscale(4 * e, 8 * e, cos),
            ]
        self.body = nn.Sequential(*layers)
        self.norm = norm
        self.out_ch = 8 * e
        self.downscales = 5 if deep else 4

    def out_res(self, resolution: int) -> int:
        """Spatial side of the last feature map (each k5 s2 p2 conv gives ceil(side / 2))."""
        for _ in range(self.downscales):
            resolution = math.ceil(resolution / 2)
        return resolution

    def out_features(self, resolution: int) -> int:
        return self.out_ch * self.out_res(resolution) ** 2

    def forward(self, x: Tensor) -> Tensor:
        x = self.body(x).flatten(1)  # [N, 8e*r*r] (NCHW order)
        return pixel_norm(x) if self.norm else x


class Inter(nn.Module):
    """flat [N,F] -> [N,ae] -> [N,C*l*l] -> [N,C,l,l] -> (upscale) [N,C,2l,2l]; l = lowest dense resolution."""

    def __init__(
        self, in_features: int, ae_dims: int, out_ch: int, lowest: int, upscale: bool = True, cos: bool = False
    ) -> None:
        super().__init__()
        # Two Denses with no activation in between: a factorised (low-rank) linear map through the ae bottleneck.
        self.dense1 = nn.Linear(in_features, ae_dims)
        self.dense2 = nn.Linear(ae_dims, lowest * lowest * out_ch)
        self.upscale = Upscale(out_ch, out_ch, cos) if upscale else nn.Identity()
        self.out_ch = out_ch
        self.lowest = lowest
        self.out_res = lowest * 2 if upscale else lowest

    def forward(self, x: Tensor) -> Tensor:
        x = self.dense2(self.dense1(x)).view(-1, self.out_ch, self.lowest, self.lowest)
        return self.upscale(x)


class RGBHead(nn.Module):
    """[N,C,H,W] -> [N,3,H,W] (1x1 conv), or with 'd' -> [N,3,2H,2W] from four convs painting the 4 sub-pixels."""

    def __init__(self, in_ch: int, double_res: bool) -> None:
        super().__init__()
        self.double_res = double_res
        kernels = (1, 3, 3, 3) if double_res else (1,)
        self.convs = nn.ModuleList(conv(in_ch, 3, k) for k in kernels)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: Tensor) -> Tensor:
        if not self.double_res:
            return torch.sigmoid(self.convs[0](x))
        # 4 x [N,3,H,W] -> [N,3,4,H,W] -> [N,12,H,W] with channel c*4+k = conv k's colour c, so after the shuffle
        # conv k paints sub-pixel k (k = 2*dy + dx) of every output 2x2 cell (TF's depth_to_space does the same).
        x = torch.stack([c(x) for c in self.convs], dim=2).flatten(1, 2)
        return torch.sigmoid(self.shuffle(x))


class Decoder(nn.Module):
    """code [N,C,r,r] -> rgb [N,3,8r,8r], mask [N,1,8r,8r] (no 't'); 't' adds a stage, 'd' a final x2."""

    def __init__(
        self, in_ch: int, d_dims: int, d_mask_dims: int, deep: bool = False, double_res: bool = False, cos: bool = False
    ) -> None:
        super().__init__()
        d, m = d_dims, d_mask_dims
        rgb_chs = [8 * d, 8 * d, 4 * d, 2 * d] if deep else [8 * d, 4 * d, 2 * d]
        mask_chs = [8 * m, 8 * m, 4 * m, 2 * m] if deep else [8 * m, 4 * m, 2 * m]
        if double_res:  # the mask has no sub-pixel head, so it climbs the last x2 with one more upscale
            mask_chs.append(m)

        rgb: list[nn.Module] = []
        prev = in_ch
        for ch in rgb_chs:  # each stage: x2 up, then one residual block
            rgb += [Upscale(prev, ch, cos), ResidualBlock(ch, cos)]
            prev = ch
        self.rgb = nn.Sequential(*rgb)
        self.rgb_head = RGBHead(prev, double_res)

        mask: list[nn.Module] = []
        prev = in_ch
        for ch in mask_chs:
            mask.append(Upscale(prev, ch, cos))
            prev = ch
        self.mask_body = nn.Sequential(*mask)
        self.mask_head = conv(prev, 1, 1)

    def mask(self, code: Tensor) -> Tensor:
        """Mask branch only (used where the RGB would be thrown away)."""
        return torch.sigmoid(self.mask_head(self.mask_body(code)))

    def forward(self, code: Tensor) -> tuple[Tensor, Tensor]:
        return self.rgb_head(self.rgb(code)), self.mask(code)


# --------------------------------------------------------------------------------------------------------------------
# The model


class SAEHD(nn.Module):
    """DF: encoder, inter, decoder_src, decoder_dst. LIAE: encoder, inter_AB, inter_B, decoder.

    Attribute names are DFL's network names, so per-network state dicts map one-to-one to DFL's weight files.
    """

    def __init__(self, cfg: ModelConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or ModelConfig()
        validate(cfg)
        self.cfg = dataclasses.replace(cfg)  # own copy: later edits to the caller's config can't desync us
        kind, opts = parse_archi(cfg.archi)
        self.kind = kind
        self.opts = frozenset(opts)
        deep, double_res, norm, cos = "t" in opts, "d" in opts, "u" in opts, "c" in opts
        res, ae = cfg.resolution, cfg.ae_dims
        lowest = res // (32 if double_res else 16)

        self.encoder = Encoder(3, cfg.e_dims, deep=deep, norm=norm, cos=cos)
        flat = self.encoder.out_features(res)

        def inter(out_ch: int) -> Inter:
            return Inter(flat, ae, out_ch, lowest, upscale=not deep, cos=cos)

        def decoder(in_ch: int) -> Decoder:
            return Decoder(in_ch, cfg.d_dims, cfg.d_mask_dims, deep=deep, double_res=double_res, cos=cos)

        if kind == "df":
            self.inter = inter(ae)
            self.decoder_src = decoder(ae)
            self.decoder_dst = decoder(ae)
            self.code_shape = (ae, self.inter.out_res, self.inter.out_res)
        else:
            # LIAE: inter_AB sees both identities, inter_B only dst; a code is two inter outputs side by side.
            self.inter_AB = inter(2 * ae)
            self.inter_B = inter(2 * ae)
            self.decoder = decoder(4 * ae)
            self.code_shape = (4 * ae, self.inter_AB.out_res, self.inter_AB.out_res)
        self.apply(glorot_init)

    @property
    def resolution(self) -> int:
        return self.cfg.resolution

    # -- parameter groups ------------------------------------------------------------------------------------------

    def groups(self) -> dict[str, nn.Module]:
        """Networks by DFL name, in DFL's order (``.parameters()`` / ``.state_dict()`` per network)."""
        names = ("inter", "decoder_src", "decoder_dst") if self.kind == "df" else ("inter_AB", "inter_B", "decoder")
        return {"encoder": self.encoder, **{n: getattr(self, n) for n in names}}

    def trainable_groups(self, random_warp: bool = True) -> dict[str, nn.Module]:
        """The networks the src/dst optimiser updates. LIAE without random warp keeps inter_AB fixed (DFL's rule)."""
        groups = self.groups()
        if self.kind == "liae" and not random_warp:
            del groups["inter_AB"]
        return groups

    def inters(self) -> list[Inter]:
        return [self.inter] if self.kind == "df" else [self.inter_AB, self.inter_B]

    def reset_inters(self) -> None:
        """Re-initialise the inter(s), as DFL does when a pretrained model switches to fine-tuning."""
        for net in self.inters():
            net.apply(glorot_init)

    def param_counts(self) -> dict[str, int]:
        counts = {name: sum(p.numel() for p in net.parameters()) for name, net in self.groups().items()}
        counts["total"] = sum(counts.values())
        return counts

    # -- computation -------------------------------------------------------------------------------------------------

    def forward(
        self, src: Tensor, dst: Tensor, detach_swap_code: bool = False, with_swap: bool = True
    ) -> dict[str, Tensor]:
        """src [Ns,3,R,R], dst [Nd,3,R,R] -> predictions (RGB [.,3,R,R], masks [.,1,R,R]) and codes.

        ``src_code``/``dst_code`` are the decoder inputs (DF: inter outputs, what the true-face discriminator judges;
        LIAE: the concatenated codes). ``detach_swap_code`` stops gradients from pred_src_dst into the code, as
        the face-style loss wants. ``with_swap=False`` skips the swap decode (a third of the decoder work) when no
        loss needs it; pred_src_dst / pred_src_dstm are then absent.
        """
        ns, nd = src.shape[0], dst.shape[0]
        z = self.encoder(torch.cat([src, dst]))  # one pass for both sides: no batch statistics anywhere
        if self.kind == "df":
            src_code, dst_code = self.inter(z).split([ns, nd])
            swap_code = dst_code.detach() if detach_swap_code else dst_code
            rgb, mask = self.decoder_src(torch.cat([src_code, swap_code]) if with_swap else src_code)
            pred_src_src, pred_src_dst = rgb.split([ns, nd]) if with_swap else (rgb, None)
            pred_src_srcm, pred_src_dstm = mask.split([ns, nd]) if with_swap else (mask, None)
            pred_dst_dst, pred_dst_dstm = self.decoder_dst(dst_code)
        else:
            ab_src, ab_dst = self.inter_AB(z).split([ns, nd])
            b_dst = self.inter_B(z[ns:])
            src_code = torch.cat([ab_src, ab_src], dim=1)
            dst_code = torch.cat([b_dst, ab_dst], dim=1)
            swap_code = torch.cat([ab_dst, ab_dst], dim=1)
            if detach_swap_code:
                swap_code = swap_code.detach()
            codes = [src_code, dst_code, swap_code] if with_swap else [src_code, dst_code]
            sizes = [ns, nd, nd] if with_swap else [ns, nd]
            rgb, mask = self.decoder(torch.cat(codes))  # one decoder pass for all
            pred_src_src, pred_dst_dst, *pred_src_dst = rgb.split(sizes)
            pred_src_srcm, pred_dst_dstm, *pred_src_dstm = mask.split(sizes)
            pred_src_dst = pred_src_dst[0] if with_swap else None
            pred_src_dstm = pred_src_dstm[0] if with_swap else None
        out = {
            "pred_src_src": pred_src_src,
            "pred_src_srcm": pred_src_srcm,
            "pred_dst_dst": pred_dst_dst,
            "pred_dst_dstm": pred_dst_dstm,
            "pred_src_dst": pred_src_dst,
            "pred_src_dstm": pred_src_dstm,
            "src_code": src_code,
            "dst_code": dst_code,
        }
        return {k: v for k, v in out.items() if v is not None}

    def swap(self, dst: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """dst [N,3,R,R] -> (swapped face [N,3,R,R], swap mask [N,1,R,R] (learned-prd), dst->dst mask (learned-dst))."""
        z = self.encoder(dst)
        if self.kind == "df":
            code = self.inter(z)
            face, mask_prd = self.decoder_src(code)
            mask_dst = self.decoder_dst.mask(code)
        else:
            ab, b = self.inter_AB(z), self.inter_B(z)
            face, mask_prd = self.decoder(torch.cat([ab, ab], dim=1))
            mask_dst = self.decoder.mask(torch.cat([b, ab], dim=1))
        return face, mask_prd, mask_dst


# --------------------------------------------------------------------------------------------------------------------
# Export


class SwapModule(nn.Module):
    """Wraps ``model.swap`` as ``forward`` so it can be traced: dst [N,3,R,R] in [0,1] -> (face, mask_prd, mask_dst)."""

    def __init__(self, model: SAEHD) -> None:
        super().__init__()
        self.model = model

    def forward(self, dst: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.model.swap(dst)
