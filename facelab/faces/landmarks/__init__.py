"""68-point landmark models: one file per backend behind ``Landmarker``; ``LANDMARKERS`` maps names to classes."""

from __future__ import annotations

from facelab.faces.landmarks.base import Landmarker, Landmarks
from facelab.faces.landmarks.dlib68 import Dlib68Landmarker
from facelab.faces.landmarks.facemesh import FaceMeshLandmarker
from facelab.faces.registry import by_name, create

LANDMARKERS: dict[str, type[Landmarker]] = by_name(Dlib68Landmarker, FaceMeshLandmarker)


def make_landmarker(name: str) -> Landmarker:
    return create(LANDMARKERS, name, "landmark model")


__all__ = ["Landmarker", "Landmarks", "LANDMARKERS", "make_landmarker"]
