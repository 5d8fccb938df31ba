"""The landmark interface: an RGB image and a face box in, 68 iBUG-order points out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from facelab.faces.detect.base import Box


@dataclass
class Landmarks:
    points: np.ndarray  # (68, 2) image px, iBUG 300-W order
    mesh: np.ndarray | None = None  # (N, 3) dense mesh in image px (z in px, relative), if the model has one


class Landmarker(ABC):
    name: str = ""

    @abstractmethod
    def landmarks(self, image: np.ndarray, box: Box) -> Landmarks | None:
        """Landmarks of the face in ``box`` of an RGB uint8 image, or None if the model finds no face there."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release native resources."""
