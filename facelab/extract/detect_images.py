"""``facelab detect``: faces, 68 landmarks and head pose of single images, without writing a faceset."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from facelab.errors import FacelabError
from facelab.faces.finder import FaceFinder, FoundFace
from facelab.geometry.pose import head_pose
from facelab.io.media import read_image


@dataclass
class DetectResult:
    """One image's faces (``to_json`` is the CLI's output line), or ``error`` when it could not be read."""

    image: str
    width: int = 0
    height: int = 0
    faces: list[dict[str, Any]] = field(default_factory=list)  # box, score, landmarks, yaw, pitch, roll
    error: str | None = None

    def to_json(self) -> str:
        return json.dumps({"image": self.image, "width": self.width, "height": self.height, "faces": self.faces})

    def summary(self) -> str:
        return self.error if self.error is not None else self.to_json()


def detect_images(paths: Iterable[str], detector: str, landmarker: str, refine: bool = True) -> Iterator[DetectResult]:
    """Find the faces of each image in ``paths``, one result per image as it is done; an unreadable image gives a
    result with ``error`` set and the rest go on."""
    finder = FaceFinder(detector, landmarker, refine)
    try:
        for path in paths:
            yield _detect(finder, path)
    finally:
        finder.close()


def _detect(finder: FaceFinder, path: str) -> DetectResult:
    try:
        img = read_image(path)
    except FacelabError as e:
        return DetectResult(str(path), error=str(e))
    h, w = img.shape[:2]
    return DetectResult(str(path), w, h, [_face(f, (w, h)) for f in finder.find(img)])


def _face(f: FoundFace, size: tuple[int, int]) -> dict[str, Any]:
    yaw, pitch, roll = head_pose(f.points, size)
    return {
        "box": [round(v, 1) for v in f.box.as_list()],
        "score": round(f.box.score, 4),
        "landmarker": f.landmarker,
        "landmarks": [[round(x, 2), round(y, 2)] for x, y in f.points],
        "yaw": round(yaw, 2),
        "pitch": round(pitch, 2),
        "roll": round(roll, 2),
    }
