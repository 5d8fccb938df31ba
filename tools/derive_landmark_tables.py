"""Derive the landmark tables by measurement (run once; output is committed): ``MESH_TO_68`` and ``MEAN_FACE_3D``
go into ``facelab/geometry/landmarks68.json`` (keys ``mesh_to_68``, ``mean_face_3d``), the two box constants into
``facelab/geometry/landmarks68.py``.

On frames where dlib HOG + the 68-point predictor and MediaPipe FaceMesh both find one face:
1. ``MESH_TO_68``: for each iBUG point, the FaceMesh vertex with the smallest median distance to it
   (in the unit face space of DFL's template, so every face counts equally);
2. ``MEAN_FACE_3D``: the 3D positions of those vertices, averaged in a normalised head frame (for solvePnP pose);
3. ``MP_TO_DLIB_BOX``: least-squares map from a BlazeFace box to the box dlib's predictor was trained on;
4. ``REFINE_BOX``: the mean dlib box in a 256-px FULL aligned crop, used by the refinement pass.

Usage: python tools/derive_landmark_tables.py ../shared/data
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from mediapipe.python.solutions import face_mesh

from facelab.faces.detect import make_detector
from facelab.faces.landmarks.dlib68 import Dlib68Landmarker
from facelab.geometry.facetype import FaceType, transform_matrix, unit_transform
from facelab.geometry.umeyama import apply_affine, umeyama
from facelab.io.media import iter_frames


def main(data: Path) -> None:
    hog = make_detector("dlib-hog")
    mp = make_detector("mediapipe")
    sp = Dlib68Landmarker()
    fm = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True)
    dl_unit, mesh_unit, mesh3d, box_pairs, refine_boxes = [], [], [], [], []
    videos = sorted((data / "videos").glob("person_*.mp4"))
    for v in videos:
        for fr in iter_frames(v, every=15):
            img = fr.image
            hb = hog.detect(img)
            mb = mp.detect(img)
            if len(hb) != 1 or len(mb) != 1:
                continue
            lm = sp.landmarks(img, hb[0]).points
            res = fm.process(img)
            if not res.multi_face_landmarks:
                continue
            h, w = img.shape[:2]
            mesh = np.array([[p.x * w, p.y * h, p.z * w] for p in res.multi_face_landmarks[0].landmark])
            u = unit_transform(lm)
            dl_unit.append(apply_affine(u, lm))
            mesh_unit.append(apply_affine(u, mesh[:, :2]))
            mesh3d.append(mesh)
            b, m = hb[0], mb[0]
            box_pairs.append(([m.x0, m.y0, m.x1, m.y1], [b.x0, b.y0, b.x1, b.y1]))
            t = transform_matrix(lm, 256, FaceType.FULL)
            corners = apply_affine(t, np.array([[b.x0, b.y0], [b.x1, b.y1]]))
            refine_boxes.append(corners.ravel())
    dl_unit, mesh_unit = np.array(dl_unit), np.array(mesh_unit)
    print(f"# {len(dl_unit)} frames from {len(videos)} videos", file=sys.stderr)
    # 1. nearest vertex per iBUG point by median distance over frames
    d = np.linalg.norm(dl_unit[:, :, None, :] - mesh_unit[:, None, :468, :], axis=-1)  # (F, 68, 468)
    med = np.median(d, axis=0)
    idx = med.argmin(axis=1)
    print("MESH_TO_68 =", idx.tolist())
    print("# median residual (unit face sides):", np.round(med[np.arange(68), idx], 4).tolist(), file=sys.stderr)
    # 2. 3D template: align each mesh (selected vertices) to the first by 3D similarity, average
    sel = [m[idx] * np.array([1, 1, 1]) for m in mesh3d]
    ref = sel[0] - sel[0].mean(0)
    ref /= np.linalg.norm(ref)
    acc = []
    for _ in range(3):
        acc = []
        for s in sel:
            t = umeyama(s, ref)
            acc.append(s @ t[:3, :3].T + t[:3, 3])
        ref = np.mean(acc, axis=0)
        ref -= ref.mean(0)
        ref /= np.linalg.norm(ref)
    # scale so the outer eye corners are 1 apart; x right, y down, z toward the camera is negative (mediapipe)
    ref = ref / np.linalg.norm(ref[45] - ref[36])
    print("MEAN_FACE_3D =", np.round(ref, 4).tolist())
    # 3. BlazeFace box -> dlib box: each dlib coordinate as a linear function of the mp box (cx, cy, w, h)
    mpb = np.array([p[0] for p in box_pairs])
    dlb = np.array([p[1] for p in box_pairs])
    feats = np.stack(
        [(mpb[:, 0] + mpb[:, 2]) / 2, (mpb[:, 1] + mpb[:, 3]) / 2, mpb[:, 2] - mpb[:, 0], mpb[:, 3] - mpb[:, 1]], 1
    )
    targ = np.stack([(dlb[:, 0] + dlb[:, 2]) / 2, (dlb[:, 1] + dlb[:, 3]) / 2, dlb[:, 2] - dlb[:, 0]], 1)
    # dlib centre = mp centre + (a, b) * mp width ; dlib side = c * mp width (mp boxes have a near-constant aspect,
    # so width alone is the well-conditioned regressor)
    w = feats[:, 2]
    cx = [float(np.sum(w * (targ[:, 0] - feats[:, 0])) / np.sum(w * w))]
    cy = [float(np.sum(w * (targ[:, 1] - feats[:, 1])) / np.sum(w * w))]
    side = [float(np.sum(w * targ[:, 2]) / np.sum(w * w))]
    resid = targ[:, 2] - side[0] * w
    print(f"# box side fit: relative residual {np.median(np.abs(resid) / targ[:, 2]):.3f}", file=sys.stderr)
    print(
        "MP_TO_DLIB_BOX =",
        {"dx": np.round(cx, 4).tolist(), "dy": np.round(cy, 4).tolist(), "side": np.round(side, 4).tolist()},
    )
    print("REFINE_BOX =", np.round(np.mean(refine_boxes, axis=0), 2).tolist())


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
