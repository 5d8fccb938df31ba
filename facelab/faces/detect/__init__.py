"""Face detectors: one file per backend behind ``Detector``; ``DETECTORS`` maps CLI names to classes."""

from __future__ import annotations

from facelab.faces.detect.base import Box, Detector
from facelab.faces.detect.dlib_hog import DlibHogDetector
from facelab.faces.detect.dlib_mmod import DlibMmodDetector
from facelab.faces.detect.mediapipe_fd import MediapipeDetector

DETECTORS: dict[str, type[Detector]] = {
    MediapipeDetector.name: MediapipeDetector,
    DlibHogDetector.name: DlibHogDetector,
    DlibMmodDetector.name: DlibMmodDetector,
}


def make_detector(name: str) -> Detector:
    try:
        return DETECTORS[name]()
    except KeyError:
        raise ValueError(f"unknown detector {name!r} (choose from {', '.join(DETECTORS)})") from None


__all__ = ["Box", "Detector", "DETECTORS", "make_detector"]
