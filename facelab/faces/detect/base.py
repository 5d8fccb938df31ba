"""The detector interface: an RGB image in, face boxes out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Box:
    """A face box in image pixels (x0, y0) top-left, (x1, y1) bottom-right, with the detector's confidence."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0
    source: str = ""  # detector name: landmark models map foreign box conventions to their own

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def as_list(self) -> list[float]:
        return [self.x0, self.y0, self.x1, self.y1]


class Detector(ABC):
    """Finds faces. Subclasses load their model in ``__init__`` and are reused across frames."""

    name: str = ""

    @abstractmethod
    def detect(self, image: np.ndarray) -> list[Box]:
        """Faces in an RGB uint8 (H, W, 3) image, largest first."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release native resources."""


def largest_first(boxes: list[Box]) -> list[Box]:
    return sorted(boxes, key=lambda b: b.area, reverse=True)


def suppress_overlaps(boxes: list[Box], iou: float = 0.4) -> list[Box]:
    """Greedy non-maximum suppression by score."""
    kept: list[Box] = []
    for b in sorted(boxes, key=lambda b: b.score, reverse=True):
        if all(b.iou(k) < iou for k in kept):
            kept.append(b)
    return kept
