"""68-point landmark models: one file per backend behind ``Landmarker``; ``LANDMARKERS`` maps names to classes."""

from __future__ import annotations

from facelab.faces.landmarks.base import Landmarker, Landmarks
from facelab.faces.landmarks.dlib68 import Dlib68Landmarker
from facelab.faces.landmarks.facemesh import FaceMeshLandmarker

LANDMARKERS: dict[str, type[Landmarker]] = {
    Dlib68Landmarker.name: Dlib68Landmarker,
    FaceMeshLandmarker.name: FaceMeshLandmarker,
}


def make_landmarker(name: str) -> Landmarker:
    try:
        return LANDMARKERS[name]()
    except KeyError:
        raise ValueError(f"unknown landmark model {name!r} (choose from {', '.join(LANDMARKERS)})") from None


__all__ = ["Landmarker", "Landmarks", "LANDMARKERS", "make_landmarker"]
