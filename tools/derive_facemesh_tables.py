"""Derive the FaceMesh topology tables (run once; output is committed to ``facelab/geometry/facemesh.json``).

1. ``triangles``: the surface triangles of MediaPipe's 468-vertex tessellation, recovered as the 3-cliques of its
   edge list (``FACEMESH_TESSELATION``; the package ships edges, not faces), each wound so that its normal
   (``cross(b - a, c - a)``) points towards the camera (negative z) on most frames. Eyes and mouth are holes.
2. ``mirror``: vertex i -> its left/right counterpart, by measurement: on frames of the ``person_*`` clips the mesh
   is reflected about its own symmetry plane (fitted from the matched pairs, three rounds) and matched to itself
   by minimum-cost assignment; the per-vertex majority over all frames is kept. The result is checked to be an
   involution.

The ordered contours (lips, lids, face oval) are written by hand and checked against the package's edge sets in
``tests/test_facemesh.py``.

Usage: python tools/derive_facemesh_tables.py ../shared/data
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

import numpy as np
from mediapipe.python.solutions import face_mesh, face_mesh_connections
from scipy.optimize import linear_sum_assignment

from facelab.io.media import iter_frames

PAIRS = ((33, 263), (133, 362), (61, 291), (234, 454))  # eye corners, mouth corners, cheeks: the first plane


def triangles() -> list[tuple[int, int, int]]:
    edges = {(min(a, b), max(a, b)) for a, b in face_mesh_connections.FACEMESH_TESSELATION}
    adj: dict[int, set[int]] = collections.defaultdict(set)
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    return sorted({tuple(sorted((a, b, k))) for a, b in edges for k in adj[a] & adj[b]})


def mirror_of(mesh: np.ndarray) -> np.ndarray:
    n = np.mean([(mesh[a] - mesh[b]) / np.linalg.norm(mesh[a] - mesh[b]) for a, b in PAIRS], 0)
    n /= np.linalg.norm(n)
    c = mesh.mean(0)
    perm = np.arange(len(mesh))
    for _ in range(3):
        reflected = mesh - 2 * ((mesh - c) @ n)[:, None] * n
        _, perm = linear_sum_assignment(np.linalg.norm(reflected[:, None] - mesh[None], axis=2))
        n = np.linalg.svd(mesh - mesh[perm], full_matrices=False)[2][0]
        c = ((mesh + mesh[perm]) / 2).mean(0)
    return perm


def main(data: Path) -> None:
    fm = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True)
    votes, facing = [], []
    tris = np.array(triangles())
    for video in sorted((data / "videos").glob("person_*.mp4")):
        for fr in iter_frames(video, every=40):
            h, w = fr.image.shape[:2]
            res = fm.process(fr.image)
            if res.multi_face_landmarks:
                lm = res.multi_face_landmarks[0].landmark
                mesh = np.array([[p.x * w, p.y * h, p.z * w] for p in lm])[:468]
                votes.append(mirror_of(mesh))
                v = mesh[tris]
                facing.append(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])[:, 2] < 0)
    v = np.array(votes)
    mirror = np.array([collections.Counter(v[:, i]).most_common(1)[0][0] for i in range(v.shape[1])])
    assert np.all(mirror[mirror] == np.arange(len(mirror))), "mirror map is not an involution"
    print(f"# {len(v)} frames; min agreement {np.mean(v == mirror, 0).min():.2f}", file=sys.stderr)
    out = Path(__file__).resolve().parents[1] / "facelab" / "geometry" / "facemesh.json"
    tables = json.loads(out.read_text()) if out.exists() else {}
    flip = np.mean(facing, 0) < 0.5
    tris[flip] = tris[flip][:, [0, 2, 1]]
    tables.update(triangles=tris.tolist(), mirror=mirror.tolist())
    out.write_text(json.dumps(tables, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
