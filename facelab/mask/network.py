"""The mask network: a small U-Net of DFL XSeg's kind (3x3 conv + FRN + TLU blocks, BlurPool downsampling, six
levels), sized for CPU inference.

Input: (N, 3, 256, 256) RGB in [0, 1], a whole-face crop (DFL's XSeg takes the same crop in BGR). Output:
(N, 1, 256, 256) logits; ``sigmoid > 0.5`` is face.

Shapes with the default widths ``(16, 24, 32, 48, 64, 96)``: the 256 px image is folded (pixel unshuffle by 4)
into 64 x 64 x 48, so every 4 x 4 block of pixels is one position with 48 channels; the six levels run at 64, 32,
16, 8, 4 and 2 px (two blocks each, BlurPool between), the decoder goes back up with bilinear x2 + concat + one
block per level, and a 3x3 conv makes 16 logits per 64 px position that unfold (pixel shuffle) into the 256 x 256
logits. A U-Net whose first levels run at 256 and 128 px costs ~8x more on a CPU for the same depth: those
full-resolution blocks are most of its time.

DFL's XSeg has about 17.6 M parameters (widths 32..512 and a dense 512 bottleneck); this one has 0.46 M
(``count_params``; 1.8 M with widths 32..192, which ran at a third of the speed) and its speed is measured by
benchmarks/mask_quality.py (README "Masks").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

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
    """(N, 3, 256, 256) RGB in [0, 1] -> (N, 1, 256, 256) logits (any side divisible by 128 works)."""

    def __init__(self, widths: Sequence[int] = DEFAULT_WIDTHS) -> None:
        super().__init__()
        w = list(widths)
        if len(w) != 6 or min(w) < 1:
            raise ValueError(f"mask network widths must be six positive numbers, got {widths}")
        self.widths = tuple(w)
        self.stem = nn.Sequential(Block(3 * UNSHUFFLE**2, w[0]), Block(w[0], w[0]))
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
