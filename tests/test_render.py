"""augment render: 3D re-rendering of src faces (package photos only; the acceptance figures come from
benchmarks/augment_render.py on ../shared/data)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import snapshot
from facelab.augment.render.draw import Edit, MouthTexture, draw, turn
from facelab.augment.render.expression import EDITS, jaw_share
from facelab.augment.render.lift import MOUTH, lift
from facelab.config import ExtractConfig
from facelab.extract.pipeline import extract
from facelab.faces.detect.base import Box
from facelab.faces.landmarks.facemesh import FaceMeshLandmarker
from facelab.faceset.store import face_files, read_face, read_meta
from facelab.geometry.facemesh import CONTOURS
from facelab.geometry.pose import rotation_to_ypr, ypr_to_rotation
from facelab.imaging.raster import rasterize


@pytest.fixture(scope="module")
def faceset(tmp_path_factory, hopper, astronaut) -> Path:
    """Grace Hopper in three slightly different crops (one person, public domain), extracted at 256 px."""
    root = tmp_path_factory.mktemp("render")
    photos = root / "photos"
    photos.mkdir()
    for i, (x0, y0) in enumerate([(0, 0), (30, 20), (60, 40)]):
        crop = hopper[y0 : y0 + 520, x0 : x0 + 440]
        cv2.imwrite(str(photos / f"hopper{i}.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    assert extract(photos, root / "faces", ExtractConfig(size=256)).faces_written == 3
    return root / "faces"


@pytest.fixture(scope="module")
def model(faceset):
    image, meta = read_face(face_files(faceset)[0])
    x0, y0 = meta.landmarks.min(0)
    x1, y1 = meta.landmarks.max(0)
    fm = FaceMeshLandmarker()
    mesh = fm.landmarks(image, Box(x0, y0, x1, y1, 1.0, "test")).mesh
    fm.close()
    return lift(image, mesh, meta.yaw, meta.pitch, meta.roll), meta


def test_ypr_round_trip():
    for ypr in [(0, 0, 0), (30, -10, 5), (-44, 20, -12)]:
        assert np.allclose(rotation_to_ypr(ypr_to_rotation(*ypr)), ypr, atol=1e-9)


def test_lift_meshes_the_whole_crop_with_the_head_turning_and_the_frame_edges_still(model):
    m, _ = model
    assert set(np.unique(m.kind)) == {0, 1, 2, 3}
    xy = m.project(m.points)
    assert np.allclose(xy, m.source_xy, atol=1e-6)  # lifting then projecting is the identity
    corners = [np.argmin(np.linalg.norm(m.source_xy - c, axis=1)) for c in [(0, 0), (255, 0), (0, 255), (255, 255)]]
    assert np.all(m.weight[corners] == 0) and np.all(m.weight[:468] == 1)
    # no depth cliff at the face's edge: the first anchor ring continues the oval's depth within a third of an IOD
    oval = np.array(CONTOURS["face_oval"])
    ring = m.points[468 : 468 + len(oval), 2]
    assert np.median(np.abs(ring - m.points[oval, 2])) < m.iod / 3


def test_turning_moves_the_face_and_keeps_the_background(model):
    m, _ = model
    p = turn(m, m.points.copy(), 30, 0)
    xy0, xy1 = m.project(m.points), m.project(p)
    nose_shift = xy1[1, 0] - xy0[1, 0]
    assert abs(nose_shift) > 0.3 * m.iod
    assert np.allclose(xy1[m.weight == 0], xy0[m.weight == 0])
    assert np.allclose(turn(m, m.points, 0, 0), m.points)


def test_renders_are_measured_where_requested(model, finder):
    from facelab.augment.reextract import find_generated_face
    from facelab.geometry.facetype import FaceType, transform_matrix
    from facelab.geometry.pose import head_pose
    from facelab.geometry.umeyama import apply_affine

    m, meta = model

    def yaw_of(img):
        pts = find_generated_face(img, finder).points
        t = transform_matrix(pts, 256, FaceType.parse(meta.face_type))
        return head_pose(apply_affine(t, pts), (256, 256))[0]

    base = yaw_of(draw(m, Edit()))
    assert abs(base - meta.yaw) < 4  # an unedited render reads like its source
    for change in (-20, 20):  # one face's error is a few degrees either way (the benchmark gives medians)
        measured = yaw_of(draw(m, Edit(yaw=change))) - base
        assert measured * change > 0 and abs(measured - change) < 10, (change, measured)


def test_expressions_move_the_right_parts(model):
    m, _ = model
    h = m.to_head(m.points[:468])
    corners = [61, 291]
    d = EDITS["smile"](h, 1.0)
    assert np.all(d[corners, 1] < -0.05)  # corners rise (y is down)
    assert d[61, 0] * d[291, 0] < 0  # ... and move apart
    d = EDITS["mouth-open"](h, 1.0)
    assert d[152, 1] > 0.2 and abs(d[10, 1]) < 1e-9  # chin drops, forehead stays
    assert np.allclose(d[CONTOURS["lips_inner_upper"][1:-1]], 0)
    assert np.all(jaw_share(h)[CONTOURS["lips_inner_lower"][1:-1]] == 1)
    d = EDITS["eyes-closed"](h, 1.0)
    for up, lo in (("right_eye_upper", "right_eye_lower"), ("left_eye_upper", "left_eye_lower")):
        gap0 = h[CONTOURS[lo][1:-1], 1] - h[CONTOURS[up][1:-1], 1]
        moved = h + d
        gap1 = moved[CONTOURS[lo][1:-1], 1] - moved[CONTOURS[up][1:-1], 1]
        assert np.all(gap1 < 0.2 * gap0 + 1e-3) and np.allclose(d[CONTOURS[lo]], 0)
    for name in EDITS:
        assert np.allclose(EDITS[name](h, 0.0), 0)


def test_mouth_open_paints_the_inside_dark_without_a_donor(model):
    m, _ = model
    edit = Edit(expressions=(("mouth-open", 1.0),))
    img = draw(m, edit, MouthTexture.dark())
    h = m.to_head(m.points[:468])
    moved = m.points.copy()
    moved[:468] = m.from_head(h + EDITS["mouth-open"](h, 1.0))
    r = rasterize(m.project(moved), moved[:, 2], m.triangles, m.size)
    inside = r.covered & (m.kind[np.maximum(r.tri, 0)] == MOUTH)
    assert inside.sum() > 100  # the opened mouth has area
    assert img[inside].mean() < 0.5 * img[~inside].mean()
    assert img.shape == m.image.shape and img.dtype == np.uint8


def test_cli_writes_flagged_renders_with_provenance_and_resumes(run_cli, faceset, tmp_path):
    before = snapshot(faceset)
    out, sheet = tmp_path / "renders", tmp_path / "sheet.png"
    args = ["augment", "render", "--faceset", str(faceset), "--out", str(out), "--yaw", "20",
            "--expression", "smile", "--preview", str(sheet)]  # fmt: skip
    code, stdout, _ = run_cli(args)
    assert code == 0, stdout
    files = sorted(out.glob("render_*.jpg"))
    assert len(files) >= 5 and "renders written" in stdout  # 3 faces x 2 edits, identity-filtered
    meta = read_meta(files[0])
    assert meta.synthetic and meta.extra["method"] == "render" and meta.extra["source_face"].endswith(".jpg")
    assert {tuple(map(tuple, read_meta(f).extra["expressions"])) for f in files} >= {(("smile", 1.0),)}
    assert cv2.imread(str(sheet)).shape[0] >= 160
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in files) + [".facelab-index.sqlite"] or all(
        p.name.startswith("render_") or p.name.startswith(".") for p in out.iterdir()
    )
    assert snapshot(faceset) == before  # sources never modified
    code, stdout, _ = run_cli(args)
    assert code == 0 and f"({len(files)} already there)" in stdout


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--yaw", "60"], "within +-45 degrees"),
        (["--pitch=-50"], "within +-45 degrees"),
        (["--expression", "wink"], "--expression wink: unknown"),
        (["--expression", "smile:1.5"], "strength must be in [0, 1]"),
        (["--yaw", "ten"], "not a comma-separated list"),
        ([], "nothing to render"),
        (["--fill"], "--fill needs --dst"),
        (["--yaw", "10", "-n", "0"], "-n must be at least 1"),
        (["--yaw", "10", "--min-identity", "0"], "--min-identity must be a positive distance"),
    ],
)
def test_bad_requests_are_one_line_errors_and_write_nothing(run_cli, faceset, tmp_path, extra, message):
    out = tmp_path / "renders"
    code, stdout, stderr = run_cli(["augment", "render", "--faceset", str(faceset), "--out", str(out), *extra])
    assert code == 2 and message in stderr, stderr
    assert not out.exists()


def test_bad_facesets_are_one_line_errors(run_cli, faceset, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "renders"
    code, _, stderr = run_cli(["augment", "render", "--faceset", str(empty), "--out", str(out), "--yaw", "10"])
    assert code == 2 and str(empty) in stderr and not out.exists()
    code, _, stderr = run_cli(
        ["augment", "render", "--faceset", str(faceset), "--out", str(out), "--fill", "--dst", str(empty)]
    )
    assert code == 2 and str(empty) in stderr and not out.exists()
    code, _, stderr = run_cli(["augment", "render", "--faceset", str(faceset), "--out", str(faceset), "--yaw", "10"])
    assert code == 2 and "--out" in stderr


def test_fill_renders_into_the_thin_pose_bin(run_cli, faceset, tmp_path):
    """A dst turned about 22 degrees (metadata says so) where the src has none: --fill renders into that bin."""
    from facelab.faceset.coverage import pose_bin
    from facelab.faceset.store import write_face

    dst = tmp_path / "dst"
    dst.mkdir()
    for i, f in enumerate(face_files(faceset) * 2):
        image, meta = read_face(f)
        meta.yaw, meta.pitch = 22.0 + i % 3, 0.0
        write_face(dst / f"d{i}.jpg", image, meta)
    src_yaw = read_meta(face_files(faceset)[0]).yaw
    out = tmp_path / "renders"
    code, stdout, stderr = run_cli(
        ["augment", "render", "--faceset", str(faceset), "--out", str(out), "--fill", "--dst", str(dst), "-n", "2"]
    )
    assert code == 0, stderr
    assert "coverage before:" in stdout and "coverage after:" in stdout
    kept = [read_meta(f) for f in out.glob("render_*.jpg")]
    assert 1 <= len(kept) <= 2
    assert all(pose_bin(m.yaw, m.pitch) == pose_bin(22.5, 0) for m in kept)
    assert all(m.extra["yaw_change"] > 10 for m in kept) and abs(src_yaw) < 12
    code, stdout, _ = run_cli(["faceset", "coverage", str(faceset), str(dst), "--add", str(out), "--json", "--no-plot"])
    assert code == 0 and json.loads(stdout)["totals"]["synthetic"] == len(kept)  # renders counted apart
