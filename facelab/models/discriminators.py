"""Discriminators for SAEHD's optional losses: a UNet patch critic (GAN power) and a code critic (true-face power).

Both return raw logits (pair them with ``binary_cross_entropy_with_logits``); tensors are NCHW.
"""

from __future__ import annotations

from itertools import product

import torch
from torch import Tensor, nn

from facelab.models.saehd import glorot_init


def receptive_field(strides: tuple[int, ...], kernel: int = 3) -> int:
    """Receptive field (px) of a chain of ``kernel``-sized convs with these strides."""
    rf, jump = 1, 1
    for s in strides:
        rf += (kernel - 1) * jump  # each conv widens the field by (k-1) input steps of the layer below
        jump *= s
    return rf


def patch_strides(patch_size: int, max_layers: int = 9) -> tuple[int, ...]:
    """Strides of the 3x3 conv chain whose receptive field is closest to ``patch_size``.

    The first conv always has stride 2 (so there is a bottleneck); later ones 1 or 2. Ties go to fewer layers,
    then to more downsampling. 16 -> (2, 2, 2) (field 15), 32 -> (2, 2, 2, 2) (field 31).
    """
    if patch_size < 1:
        raise ValueError(f"patch_size {patch_size}: must be positive")
    best: tuple[tuple[int, int, int, int], tuple[int, ...]] | None = None
    for n in range(1, max_layers + 1):
        for rest in product((1, 2), repeat=n - 1):
            strides = (2, *rest)
            rf = receptive_field(strides)
            key = (abs(rf - patch_size), n, -sum(strides), rf)
            if best is None or key < best[0]:
                best = (key, strides)
    assert best is not None
    return best[1]


class UNetPatchDiscriminator(nn.Module):
    """[N,C,H,W] -> (center logits [N,1,h,w] at the bottleneck, full-resolution logits [N,1,H,W]).

    Encoder: 1x1 conv to ``base_ch``, then 3x3 convs (strides from :func:`patch_strides`) with channels
    min(base * 2^(i+1), 512). Decoder: a transposed 3x3 conv mirroring each encoder conv, its output concatenated
    with the matching encoder feature map (UNet skip). LeakyReLU 0.2 throughout; heads are 1x1 convs.
    """

    def __init__(self, in_ch: int = 3, patch_size: int = 16, base_ch: int = 16) -> None:
        super().__init__()
        self.strides = patch_strides(patch_size)
        n = len(self.strides)
        chs = [base_ch] + [min(base_ch * 2 ** (i + 1), 512) for i in range(n)]  # chs[i] = input ch of conv i
        self.act = nn.LeakyReLU(0.2)
        self.in_conv = nn.Conv2d(in_ch, base_ch, 1)
        self.convs = nn.ModuleList(
            nn.Conv2d(chs[i], chs[i + 1], 3, stride=s, padding=1) for i, s in enumerate(self.strides)
        )
        self.center_out = nn.Conv2d(chs[n], 1, 1)
        # upconvs[i] undoes convs[i]: it maps level i+1 back to level i (the deepest one has no skip in its input).
        self.upconvs = nn.ModuleList(
            nn.ConvTranspose2d(chs[i + 1] * (1 if i == n - 1 else 2), chs[i], 3, stride=s, padding=1)
            for i, s in enumerate(self.strides)
        )
        self.out_conv = nn.Conv2d(2 * base_ch, 1, 1)
        self.apply(glorot_init)

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.strides)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.act(self.in_conv(x))  # [N,base,H,W]
        skips = []
        for conv in self.convs:
            skips.append(x)
            x = self.act(conv(x))  # halves the side where stride 2 (ceil)
        center = self.center_out(x)  # [N,1,h,w]
        for upconv, skip in zip(reversed(self.upconvs), reversed(skips)):
            # output_size picks the output padding, so odd sides (e.g. 15 -> 8 -> 15) come back exactly
            x = self.act(upconv(x, output_size=skip.shape[-2:]))
            x = torch.cat([skip, x], dim=1)  # [N,2*ch,h',w']
        return center, self.out_conv(x)  # full: [N,1,H,W]


class CodeDiscriminator(nn.Module):
    """Code critic for true-face power: [N,C,r,r] -> logits [N,1,r',r'], r' = r / 2^n, n = 1 + r // 8.

    Convs have stride 2 and channels base * min(2^i, 8); kernel 4 (padding 1) for the first, 3 (padding 1) after;
    LeakyReLU 0.1; then a 1x1 conv to logits.
    """

    def __init__(self, in_ch: int, code_res: int, base_ch: int = 256) -> None:
        super().__init__()
        n = 1 + code_res // 8
        layers: list[nn.Module] = []
        prev = in_ch
        for i in range(n):
            ch = base_ch * min(2**i, 8)
            k = 4 if i == 0 else 3
            layers += [nn.Conv2d(prev, ch, k, stride=2, padding=1), nn.LeakyReLU(0.1)]
            prev = ch
        self.body = nn.Sequential(*layers)
        self.out_conv = nn.Conv2d(prev, 1, 1)
        self.apply(glorot_init)

    def forward(self, code: Tensor) -> Tensor:
        return self.out_conv(self.body(code))
