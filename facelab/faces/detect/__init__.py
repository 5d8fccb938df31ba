"""Face detectors: one file per backend behind ``Detector``; ``DETECTORS`` maps CLI names to classes."""

from __future__ import annotations

from facelab.faces.detect.base import Box, Detector
from facelab.faces.detect.dlib_hog import DlibHogDetector
from facelab.faces.detect.dlib_mmod import DlibMmodDetector
from facelab.faces.detect.mediapipe_fd import MediapipeDetector
from facelab.faces.registry import by_name, create

DETECTORS: dict[str, type[Detector]] = by_name(MediapipeDetector, DlibHogDetector, DlibMmodDetector)


def make_detector(name: str) -> Detector:
    return create(DETECTORS, name, "detector")


__all__ = ["Box", "Detector", "DETECTORS", "make_detector"]
