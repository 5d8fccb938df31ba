import numpy as np
from mediapipe.python.solutions import face_mesh_connections as fmc

from facelab.geometry.facemesh import CONTOURS, MIRROR, N_VERTICES, TRIANGLES, hole_strips, strip


def _edges(conns) -> set[tuple[int, int]]:
    return {(min(a, b), max(a, b)) for a, b in conns}


def test_contours_follow_the_package_edges():
    edges = _edges(fmc.FACEMESH_LIPS | fmc.FACEMESH_LEFT_EYE | fmc.FACEMESH_RIGHT_EYE | fmc.FACEMESH_FACE_OVAL)
    for name, c in CONTOURS.items():
        ring = c + [c[0]] if name == "face_oval" else c
        assert all((min(a, b), max(a, b)) in edges for a, b in zip(ring, ring[1:])), name


def test_triangles_are_tessellation_faces():
    edges = _edges(fmc.FACEMESH_TESSELATION)
    assert TRIANGLES.shape == (854, 3) and TRIANGLES.max() == N_VERTICES - 1
    for t in TRIANGLES[::37]:
        a, b, c = sorted(t.tolist())
        assert {(a, b), (a, c), (b, c)} <= edges


def test_mirror_is_an_involution_that_swaps_the_sides():
    assert np.array_equal(MIRROR[MIRROR], np.arange(N_VERTICES))
    assert MIRROR[33] == 263 and MIRROR[61] == 291 and MIRROR[1] == 1  # eye corners, mouth corners, nose tip
    assert [MIRROR[v] for v in CONTOURS["right_eye_upper"]] == CONTOURS["left_eye_upper"]
    tris = {tuple(sorted(t)) for t in TRIANGLES.tolist()}
    mirrored = sum(tuple(sorted(MIRROR[t].tolist())) in tris for t in TRIANGLES)
    assert mirrored / len(TRIANGLES) > 0.98  # the tessellation is symmetric but for a few flipped diagonals


def test_strips_close_the_holes_without_new_vertices():
    s = strip([0, 1, 2, 3], [0, 4, 5, 3])
    assert s.tolist() == [[0, 1, 4], [1, 2, 4], [2, 5, 4], [2, 3, 5]]
    holes = hole_strips()
    assert holes["mouth"].shape == (18, 3) and holes["eyes"].shape == (28, 3)
    tris = {tuple(sorted(t)) for t in TRIANGLES.tolist()}
    assert not any(tuple(sorted(t)) in tris for t in np.concatenate(list(holes.values())).tolist())
