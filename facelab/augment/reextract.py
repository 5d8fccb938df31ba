"""Put a synthetic image through extraction: detect, landmark, align to the faceset's face type and size, measure
identity, pose and blur. Shared by ``augment sample`` (generated images) and ``augment render`` (re-rendered faces),
so a synthetic face's metadata is measured like any extracted face's, never assumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facelab import __version__
from facelab.faces.finder import FaceFinder, FoundFace
from facelab.faces.identity import FaceDescriber
from facelab.faceset.meta import FaceMeta
from facelab.faceset.store import read_face
from facelab.geometry.align import align_face
from facelab.geometry.facetype import FaceType
from facelab.geometry.pose import head_pose
from facelab.geometry.umeyama import apply_affine, invert_affine
from facelab.imaging.sharpness import laplacian_sharpness

IDENTITY_REFERENCE_FACES = 64  # real faces averaged into the identity reference (spread over the faceset)


@dataclass
class Reextracted:
    face: np.ndarray  # aligned RGB crop
    meta: FaceMeta  # synthetic=True, with ``extra`` as given plus the identity distance
    distance: float  # dlib descriptor distance to the reference
    descriptor: np.ndarray  # the face's dlib descriptor (128,), which ``distance`` was measured with


def search_image(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What a detector searches for the face of a synthetic image, and the map from it back to the image.

    A synthetic face is an aligned crop, tighter than any photo a detector was made for: it is searched in a 2x
    upscale padded by half its side with replicated border (what ``benchmarks/train_pair.py`` found to work).
    """
    big = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    pad = big.shape[0] // 2
    back = np.array([[0.5, 0.0, -pad / 2], [0.0, 0.5, -pad / 2]])  # padded 2x image -> synthetic image
    return cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE), back


def find_generated_face(image: np.ndarray, finder: FaceFinder) -> FoundFace | None:
    """The largest face in a synthetic image, in the image's pixels, or None."""
    search, back = search_image(image)
    found = finder.find(search, max_faces=1)
    if not found:
        return None
    f = found[0]
    box = type(f.box)(*apply_affine(back, np.array(f.box.as_list()).reshape(2, 2)).ravel(), f.box.score, f.box.source)
    mesh = None
    if f.mesh is not None:
        mesh = f.mesh.copy()
        mesh[:, :2] = apply_affine(back, mesh[:, :2])
        mesh[:, 2] *= 0.5
    return FoundFace(box, apply_affine(back, f.points), mesh, f.landmarker)


def reextract(
    image: np.ndarray,
    finder: FaceFinder,
    describer: FaceDescriber,
    reference: np.ndarray,
    face_type: FaceType,
    size: int,
    *,
    source_file: str,
    frame_index: int,
    extra: dict[str, Any],
) -> Reextracted | None:
    """Extract the face of one synthetic image; None when there is none."""
    found = find_generated_face(image, finder)
    if found is None:
        return None
    # align from a replicate-padded copy: the crop may reach past the tight synthetic image, and a black wedge
    # there (extraction's constant border) would be a defect no real face of this faceset has
    p = image.shape[0] // 2
    padded = cv2.copyMakeBorder(image, p, p, p, p, cv2.BORDER_REPLICATE)
    face, m_pad = align_face(padded, found.points + p, face_type, size)
    m = m_pad.copy()
    m[:, 2] += m_pad[:, :2] @ np.array([p, p], dtype=np.float64)  # same map, from the unpadded image
    aligned = apply_affine(m, found.points)
    descriptor = describer.describe(face, aligned)
    distance = float(np.linalg.norm(descriptor - reference))
    yaw, pitch, roll = head_pose(aligned, (size, size))
    h, w = image.shape[:2]
    meta = FaceMeta(
        face_type=face_type.value,
        size=size,
        landmarks=aligned,
        source_landmarks=found.points,
        transform=m,
        inverse=invert_affine(m),
        source_file=source_file,
        source_size=(w, h),
        source_rect=tuple(found.box.as_list()),
        face_index=0,
        frame_index=frame_index,
        detector=finder.names[0],
        detector_score=found.box.score,
        landmarker=found.landmarker or finder.names[1] + ("+refine" if finder.refine else ""),
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        blur=laplacian_sharpness(face, aligned),
        mesh=found.mesh,
        synthetic=True,
        extra={**extra, "identity_distance": round(distance, 4), "facelab_version": __version__},
    )
    return Reextracted(face, meta, distance, descriptor)


def mean_descriptor(real: list[tuple[Path, FaceMeta]], describer: FaceDescriber) -> np.ndarray:
    """Mean dlib descriptor of up to IDENTITY_REFERENCE_FACES real faces spread evenly over the faceset (by name,
    which for video facesets means over time)."""
    k = min(IDENTITY_REFERENCE_FACES, len(real))
    idx = np.unique(np.linspace(0, len(real) - 1, k).round().astype(int))
    descs = []
    for i in idx:
        img, meta = read_face(real[i][0])
        descs.append(describer.describe(img, meta.landmarks))
    return np.mean(descs, axis=0)
