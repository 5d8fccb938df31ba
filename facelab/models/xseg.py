"""The mask network, a small U-Net of DFL XSeg's kind (3x3 conv + FRN + TLU blocks, BlurPool downsampling, six
levels) sized for CPU inference, and a trained one loaded for prediction. ``facelab mask train`` writes it; ``mask
apply`` and merge's xseg-prd modes run it, so it lives below the stages (stages do not import each other).

Input: (N, 3, 256, 256) RGB in [0, 1], a whole-face crop (DFL's XSeg takes the same crop in BGR), and with
``MaskConfig.hull_prior`` (the default) a 4th channel, the face's landmark hull in that crop (1 inside): a
network given the hull learns the occluders to take out of it, where one given the image alone must also learn
every new person's outline (trained 10 minutes on 71 faces of two people, the image-only one lost 16 % of the
hull on clean faces of others). Output: (N, 1, 256, 256) logits; ``sigmoid > 0.5`` is face.

Shapes with the default widths ``(16, 24, 32, 48, 64, 96)``: the 256 px image is folded (pixel unshuffle by 4)
into 64 x 64 x 48, so every 4 x 4 block of pixels is one position with 48 channels; the six levels run at 64, 32,
16, 8, 4 and 2 px (two blocks each, BlurPool between), the decoder goes back up with bilinear x2 + concat + one
block per level, and a 3x3 conv makes 16 logits per 64 px position that unfold (pixel shuffle) into the 256 x 256
logits. A U-Net whose first levels run at 256 and 128 px costs ~8x more on a CPU for the same depth: those
full-resolution blocks are most of its time.

DFL's XSeg has about 17.6 M parameters (widths 32..512 and a dense 512 bottleneck); this one has 0.46 M
(``count_params``; 1.8 M with widths 32..192, which ran at a third of the speed) and its speed is measured by
benchmarks/mask_quality.py (README "Masks").

``load_mask_model(path)`` takes a folder written by ``facelab mask train`` (never unpickled: safetensors +
JSON); ``MaskModel.predict`` takes aligned whole-face crops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facelab.config import MaskConfig
from facelab.errors import FacelabError
from facelab.io import checkpoint

DEFAULT_WIDTHS = (16, 24, 32, 48, 64, 96)
UNSHUFFLE = 4  # the 256 px input is folded into 64 x 64 x 48 before the first conv
RESOLUTION = 256


class FRN(nn.Module):
    """Filter Response Normalisation with a Thresholded Linear Unit (Singh & Krishnan 2020; DFL's XSeg):
    ``max(gamma * x / sqrt(mean_hw(x^2) + eps) + beta, tau)``."""

    def __init__(self, ch: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, ch, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, ch, 1, 1))
        self.tau = nn.Parameter(torch.zeros(1, ch, 1, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nu2 = x.pow(2).mean(dim=(2, 3), keepdim=True)
        x = x * torch.rsqrt(nu2 + self.eps)
        return torch.maximum(self.gamma * x + self.beta, self.tau)


class Block(nn.Module):
    """3x3 conv -> FRN + TLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.frn = FRN(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.frn(self.conv(x))


class BlurPool(nn.Module):
    """Anti-aliased downsampling (Zhang 2019, DFL's XSeg): a fixed [1 2 1] x [1 2 1] / 16 depthwise blur with
    stride 2 on a reflect-padded input."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        k = (k[:, None] * k[None, :]) / 16
        self.register_buffer("kernel", k.expand(ch, 1, 3, 3).contiguous(), persistent=False)
        self.ch = ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.kernel, stride=2, groups=self.ch)


class MaskNet(nn.Module):
    """(N, C, 256, 256) in [0, 1] -> (N, 1, 256, 256) logits (any side divisible by 128 works); C = 3 (RGB) or
    4 (RGB + landmark hull)."""

    def __init__(self, widths: Sequence[int] = DEFAULT_WIDTHS, in_channels: int = 3) -> None:
        super().__init__()
        w = list(widths)
        if len(w) != 6 or min(w) < 1:
            raise ValueError(f"mask network widths must be six positive numbers, got {widths}")
        self.widths, self.in_channels = tuple(w), in_channels
        self.stem = nn.Sequential(Block(in_channels * UNSHUFFLE**2, w[0]), Block(w[0], w[0]))
        self.down = nn.ModuleList(
            nn.Sequential(BlurPool(w[i - 1]), Block(w[i - 1], w[i]), Block(w[i], w[i])) for i in range(1, 6)
        )
        self.up = nn.ModuleList(Block(w[i + 1] + w[i], w[i]) for i in range(4, -1, -1))
        self.head = nn.Conv2d(w[0], UNSHUFFLE**2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(F.pixel_unshuffle(x * 2 - 1, UNSHUFFLE))]
        for d in self.down:
            skips.append(d(skips[-1]))
        y = skips[-1]
        for i, up in zip(range(4, -1, -1), self.up):
            y = F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)
            y = up(torch.cat([y, skips[i]], dim=1))
        return F.pixel_shuffle(self.head(y), UNSHUFFLE)


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# --- a trained model ---------------------------------------------------------------------------------------------


def parse_widths(text: str) -> tuple[int, ...]:
    try:
        w = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        raise FacelabError(f"mask widths must be six comma-separated numbers, not {text!r}") from None
    if len(w) != 6 or min(w) < 1:
        raise FacelabError(f"mask widths must be six comma-separated positive numbers, not {text!r}")
    return w


def build_net(cfg: MaskConfig) -> MaskNet:
    """The network ``cfg`` describes (widths, and a hull channel with ``hull_prior``)."""
    return MaskNet(parse_widths(cfg.widths), 4 if cfg.hull_prior else 3)


def config_from_state(state: dict, where: Path) -> MaskConfig:
    """The MaskConfig saved with a model; models saved before ``hull_prior`` existed took the image alone."""
    try:
        known = {f.name for f in fields(MaskConfig)}
        saved = {"hull_prior": False, **dict(state["mask"])}
        return MaskConfig(**{k: v for k, v in saved.items() if k in known})
    except (KeyError, TypeError, ValueError) as e:
        raise FacelabError(f"{where}: not a facelab mask model ({type(e).__name__}: {e})") from e


class MaskModel:
    """A trained mask network in eval mode, its weights and inputs channels-last: oneDNN's convolutions take them
    as they are (NCHW ones are reordered around every conv), 211 against 158 faces per CPU-second on one thread.
    The probabilities differ from an NCHW pass by rounding only (< 2e-6): 0 to 2 of 23 M pixels flip at 0.5 on
    354 faces of person_p1 for three trained models."""

    resolution = RESOLUTION
    face_type = "whole_face"

    def __init__(self, net: MaskNet, cfg: MaskConfig, name: str, iteration: int) -> None:
        self.net = net.eval().requires_grad_(False).to(memory_format=torch.channels_last)
        self.cfg, self.name, self.iteration = cfg, name, iteration

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: str | torch.device) -> MaskModel:
        self.net.to(device)
        return self

    @property
    def hull_prior(self) -> bool:
        """Whether ``predict`` needs each face's landmark hull beside its crop."""
        return self.cfg.hull_prior

    @torch.inference_mode()
    def predict_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, 256, 256) float in [0, 1] on the model's device (RGB, then the hull with ``hull_prior``) ->
        (N, 1, 256, 256) probabilities (for merge, where the swapped faces are already tensors)."""
        return torch.sigmoid(self.net(x.float().contiguous(memory_format=torch.channels_last)))

    def predict(self, images: np.ndarray, batch: int = 16, hulls: np.ndarray | None = None) -> np.ndarray:
        """uint8 (N, 256, 256, 3) RGB aligned whole-face crops (and, for a ``hull_prior`` model, ``hulls``: (N, 256,
        256) landmark hulls in those crops, 1 inside) -> float32 (N, 256, 256) in [0, 1] (1 = face). Crops of
        another square size are resized to 256 px and their masks back."""
        imgs = np.asarray(images)
        if imgs.ndim == 3:
            imgs = imgs[None]
        if imgs.ndim != 4 or imgs.shape[3] != 3 or imgs.shape[1] != imgs.shape[2]:
            raise ValueError(f"predict expects (N, S, S, 3) RGB crops, got {imgs.shape}")
        if self.hull_prior:
            if hulls is None:
                raise ValueError("this mask model takes each face's landmark hull beside its crop (hulls=...)")
            hulls = np.asarray(hulls, np.float32).reshape(imgs.shape[:3])
            imgs = np.concatenate([imgs, np.round(hulls * 255).astype(np.uint8)[..., None]], axis=3)
        side = imgs.shape[1]
        if side != RESOLUTION:
            interp = cv2.INTER_AREA if side > RESOLUTION else cv2.INTER_CUBIC
            imgs = np.stack([cv2.resize(im, (RESOLUTION, RESOLUTION), interpolation=interp) for im in imgs])
        out = np.empty((len(imgs), RESOLUTION, RESOLUTION), np.float32)
        for s in range(0, len(imgs), batch):  # (N, H, W, C) memory seen as NCHW is already channels-last
            x = torch.from_numpy(np.ascontiguousarray(imgs[s : s + batch])).permute(0, 3, 1, 2)
            x = x.to(self.device).float() / 255.0
            out[s : s + batch] = self.predict_tensor(x)[:, 0].float().cpu().numpy()
        if side != RESOLUTION:
            out = np.stack([cv2.resize(m, (side, side), interpolation=cv2.INTER_LINEAR) for m in out])
        return out


def load_mask_model(path: str | Path, device: str | torch.device = "cpu") -> MaskModel:
    """The mask model in the folder ``path`` (from ``facelab mask train``); a one-line FacelabError naming it when
    it is missing, not a mask model or corrupt."""
    path = Path(path)
    if path.is_file():
        raise FacelabError(f"{path}: a mask model is a folder written by 'facelab mask train', not a file")
    if not path.exists():
        raise FacelabError(f"{path}: no such mask model (train one with 'facelab mask train')")
    try:
        ck = checkpoint.require(path, "no trained mask model here (run 'facelab mask train' first)")
    except FacelabError as e:
        raise FacelabError(str(e).splitlines()[0]) from e
    cfg = config_from_state(ck.state, path)
    try:  # a damaged state.json: the message must name the model, not just the bad value
        net = build_net(cfg)
        iteration = int(ck.state.get("iteration", 0))
    except (FacelabError, TypeError, ValueError) as e:
        raise FacelabError(f"{path}: not a usable mask model ({e})") from e
    try:
        net.load_state_dict(checkpoint.submodule(ck.model, "net"))
    except RuntimeError as e:
        raise FacelabError(f"{path}: mask model weights do not fit its config ({str(e).splitlines()[0]})") from e
    return MaskModel(net, cfg, path.resolve().name, iteration).to(device)
