"""Faceset coverage: expression features (real photos and a rotated 3D mean face), bins, thin bins, text, plot, CLI,
and synthetic faces counted apart by ``faceset info``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import shared_path
from facelab.cli import main as cli
from facelab.faceset.coverage import (
    MOUTH_EDGES,
    SMILE_EDGES,
    coverage,
    expression_bin,
    expression_features,
    folder_coverage,
    format_coverage,
    frontalize,
    pose_bin,
)
from facelab.faceset.coverage_plot import plot_coverage
from facelab.faceset.info import faceset_info, format_info
from facelab.faceset.meta import FaceMeta
from facelab.faceset.store import write_face
from facelab.geometry.landmarks68 import MEAN_FACE_3D
from facelab.io.media import read_image

# --- synthetic landmarks -------------------------------------------------------------------------------------------


def _face3d(mouth: float = 0.0, smile: float = 0.0) -> np.ndarray:
    """The 3D mean face with its jaw dropped by ``mouth`` (lower lip and chin down, corners down 0.3 of it, as a real
    jaw does) and its mouth corners lifted by ``smile`` (units: outer eye corners one apart)."""
    x = MEAN_FACE_3D.astype(np.float64).copy()
    x[[65, 66, 67, 55, 56, 57, 58, 59], 1] += mouth
    x[6:11, 1] += mouth
    for c, nb in ((48, (49, 59, 60)), (54, (53, 55, 64))):
        x[c, 1] += 0.3 * mouth - smile
        x[list(nb), 1] -= smile / 2  # the lips next to a corner follow it part of the way
    return x


def _project(x: np.ndarray, yaw: float = 0, pitch: float = 0, roll: float = 0, dist: float = 8.0) -> np.ndarray:
    """Perspective view of 3D points (y down, z away) turned by yaw/pitch/roll degrees, camera ``dist`` units away."""
    a, b, c = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    p = (x - x.mean(0)) @ (rz @ rx @ ry).T
    return p[:, :2] * dist / (p[:, 2:] + dist) * 90 + 128


POSES = [(0, 0, 0), (30, 0, 0), (-40, 0, 0), (0, 20, 0), (0, -20, 0), (25, 15, 10), (-35, -20, -15)]


@pytest.mark.parametrize("pose", POSES)
def test_features_ignore_head_pose(pose):
    """The same expression reads the same turned +-40 degrees or tilted +-20: what frontalising is for."""
    for mouth, smile in ((0.0, 0.0), (0.25, 0.0), (0.0, 0.06)):
        x = _face3d(mouth, smile)
        ref = expression_features(_project(x))
        got = expression_features(_project(x, *pose))
        assert got == pytest.approx(ref, rel=0.1, abs=0.02), (mouth, smile)  # rel: perspective at 8 units


def test_features_move_the_right_way_on_synthetic_faces():
    base_m, base_s = expression_features(_project(_face3d(), 20, -10))
    open_m, open_s = expression_features(_project(_face3d(mouth=0.3), 20, -10))
    smile_m, smile_s = expression_features(_project(_face3d(smile=0.08), 20, -10))
    assert open_m > base_m + 0.3 and abs(open_s - base_s) < 0.03  # a dropped jaw is not a frown
    assert smile_s > base_s + 0.08 and abs(smile_m - base_m) < 0.03
    # rotation, scale and translation in the image plane change nothing
    p = _project(_face3d(0.2, 0.05), 10, 5)
    r = cv2.getRotationMatrix2D((50, 80), 25, 1.7)
    assert expression_features(p @ r[:, :2].T + r[:, 2]) == pytest.approx(expression_features(p), abs=1e-6)
    # the frontal mean face frontalises to itself
    np.testing.assert_allclose(frontalize(MEAN_FACE_3D[:, :2] * 300 + 40), MEAN_FACE_3D[:, :2], atol=0.02)


def test_degenerate_landmarks_give_nan_and_no_bin():
    for bad in (np.zeros((68, 2)), np.full((68, 2), np.nan), np.zeros((5, 2))):
        m, s = expression_features(bad)
        assert math.isnan(m) and math.isnan(s)
    assert expression_bin(math.nan, 0.0) is None


def test_bins_edges_and_clipping():
    assert pose_bin(0.0, -0.1) == (6, 5) and pose_bin(-120, 200) == (0, 11) and pose_bin(89.9, -90) == (11, 0)
    assert expression_bin(MOUTH_EDGES[0] - 1e-3, SMILE_EDGES[0] - 1e-3) == (0, 0)
    assert expression_bin(MOUTH_EDGES[0], SMILE_EDGES[-1]) == (1, len(SMILE_EDGES))
    assert expression_bin(9.0, -9.0) == (len(MOUTH_EDGES), 0)


# --- real faces ----------------------------------------------------------------------------------------------------


def _features_of(finder, img: np.ndarray) -> tuple[float, float]:
    faces = finder.find(img)
    assert faces, "no face found"
    return expression_features(faces[0].points)


def test_features_on_package_photos(finder, hopper, astronaut):
    """Grace Hopper, lips closed and neutral; Eileen Collins, a broad open smile."""
    h_mouth, h_smile = _features_of(finder, hopper)
    a_mouth, a_smile = _features_of(finder, astronaut)
    assert expression_bin(h_mouth, h_smile) == (0, 0)  # closed, no smile
    assert a_mouth > h_mouth + 0.08 and a_smile > h_smile + 0.05
    assert a_smile >= SMILE_EDGES[-1]  # "broad"
    # a mirrored photo is the same expression
    assert _features_of(finder, np.ascontiguousarray(hopper[:, ::-1])) == pytest.approx((h_mouth, h_smile), abs=0.02)


def test_features_on_expression_photos(finder):
    """../shared/data's open-mouth photos against closed-mouth and smiling ones."""
    f = {
        name: _features_of(finder, read_image(shared_path(rel)))
        for name, rel in {
            "surprised": "images/expr_surprised.jpg",
            "scream": "images/expr_scream_lp_d9.jpg",
            "open_p4": "identities/person_p4/lp_d19.jpg",
            "angry": "images/expr_angry.jpg",
            "smile_tom": "images/single_tom_cruise.jpg",
        }.items()
    }
    for name in ("surprised", "scream", "open_p4"):
        assert f[name][0] > 0.35 > f["angry"][0] + 0.3, name  # "wide" against lips closed
        assert f[name][1] < SMILE_EDGES[0], name  # an open jaw is not a smile
    assert f["smile_tom"][1] > SMILE_EDGES[-1] > max(v[1] for k, v in f.items() if k != "smile_tom")


# --- coverage on constructed metas ---------------------------------------------------------------------------------

FRONTAL = _project(_face3d())
OPEN = _project(_face3d(mouth=0.3))
SMILE = _project(_face3d(smile=0.1))


def _meta(yaw: float, pitch: float, lm: np.ndarray = FRONTAL, synthetic: bool = False, i: int = 0) -> FaceMeta:
    return FaceMeta(
        "whole_face",
        256,
        lm,
        lm,
        np.eye(2, 3),
        np.eye(2, 3),
        "generator:g" if synthetic else "clip.mp4",
        (256, 256),
        (0, 0, 256, 256),
        frame_index=i,
        yaw=yaw,
        pitch=pitch,
        synthetic=synthetic,
    )


def _src_dst() -> tuple[list[FaceMeta], list[FaceMeta]]:
    """src: 90 frontal neutral + 10 turned right (+20 yaw) open-mouthed, 6 synthetic side faces (-20 yaw);
    dst: 20 frontal neutral, 20 looking left (-20 yaw), 10 smiling, 2 far left (-50 yaw: too few to count)."""
    src = [_meta(3, 2) for _ in range(90)] + [_meta(20, 2, OPEN) for _ in range(10)]
    src += [_meta(-20, 2, synthetic=True) for _ in range(6)]
    dst = [_meta(3, 2) for _ in range(20)] + [_meta(-20, 2) for _ in range(20)] + [_meta(3, 2, SMILE)] * 10
    dst += [_meta(-50, 2) for _ in range(2)]
    return src, dst


def test_coverage_counts_and_thin_bins():
    src, dst = _src_dst()
    cov = coverage(src, dst)
    assert cov.totals == {"src": 100, "synthetic": 6, "dst": 52}
    for g, n in cov.totals.items():
        assert cov.pose[g].sum() == n and cov.expression[g].sum() == n and cov.unmeasured[g] == 0
    front, left, right = pose_bin(3, 2), pose_bin(-20, 2), pose_bin(20, 2)
    assert cov.pose["src"][front] == 90 and cov.pose["src"][right] == 10 and cov.pose["synthetic"][left] == 6
    assert cov.pose["dst"][left] == 20 and cov.pose["dst"][pose_bin(-50, 2)] == 2
    neutral, wide, smile = (expression_bin(*expression_features(lm)) for lm in (FRONTAL, OPEN, SMILE))
    assert neutral == (1, 0) and wide == (3, 0) and smile == (1, 2)  # the mean face's lips are parted
    assert cov.expression["src"][neutral] == 90 and cov.expression["src"][wide] == 10
    assert cov.expression["dst"][smile] == 10

    thin = cov.thin_bins()
    # left: dst 20/52 of 100 src faces = 38.5 wanted, 0 real; smiles: 10/52 -> 19.2 wanted, 0 real;
    # frontal (src has 90 for 73 wanted) is not thin; the far-left bin has fewer than min_dst dst faces
    assert [(b.kind, b.index, b.deficit) for b in thin] == [("pose", left, 39), ("expression", smile, 20)]
    assert thin[0].synthetic == 6 and thin[0].src == 0 and thin[0].dst == 20
    assert thin[0].label == "yaw -30..-15, pitch +0..+15" and thin[1].label == "mouth parted, smile broad"
    assert [b.index for b in cov.thin_bins("pose", min_dst=2)] == [left, pose_bin(-50, 2)]
    assert cov.thin_bins("expression") == thin[1:]
    # counting the synthetic faces shrinks what is missing
    assert cov.thin_bins("pose", with_synthetic=True)[0].deficit == 33
    with pytest.raises(ValueError, match="unknown bin kind"):
        cov.thin_bins("colour")
    d = json.loads(json.dumps(cov.to_dict()))
    assert d["totals"]["dst"] == 52 and len(d["thin_bins"]) == 2 and np.sum(d["pose"]["synthetic"]) == 6


def test_format_coverage_shows_grids_and_thin_bins():
    cov = coverage(*_src_dst(), src_name="fs_src", dst_name="fs_dst")
    text = format_coverage(cov)
    assert "src fs_src: 106 faces (100 real, 6 synthetic)" in text and "dst fs_dst: 52 faces" in text
    assert "0/20+6" in text  # the left bin: no real src face, 20 dst, 6 synthetic
    assert "90/30" in text and "-30..-15" in text and "mouth\\smile" in text
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("thin bins"))
    assert "pose" in lines[i + 1] and "needs 39, +6 synthetic (33 still missing)" in lines[i + 1]
    assert "smile broad" in lines[i + 2]
    src = _src_dst()[0]
    same = coverage(src, [m for m in src if not m.synthetic])
    assert "none: src covers every bin dst uses" in format_coverage(same)


def test_plot_written_atomically_and_nonempty(tmp_path):
    png = tmp_path / "cov.png"
    plot_coverage(coverage(*_src_dst()), png)
    img = cv2.imread(str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and img is not None and img.shape[1] > img.shape[0] > 400
    assert img.std() > 20  # heatmaps, not a blank canvas
    assert [p.name for p in tmp_path.iterdir()] == ["cov.png"]  # no temp file left behind


# --- folders, CLI, info --------------------------------------------------------------------------------------------


def _write_faceset(folder: Path, metas: list[FaceMeta]) -> Path:
    folder.mkdir(parents=True)
    img = np.full((32, 32, 3), 128, np.uint8)  # coverage reads metadata only
    for i, m in enumerate(metas):
        prefix = "synthetic_g" if m.synthetic else "frame"
        write_face(folder / f"{prefix}_{i:04d}.jpg", img, m)
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cov")
    src, dst = _src_dst()
    return _write_faceset(root / "fs_src", src), _write_faceset(root / "fs_dst", dst)


def test_cli_coverage_prints_and_plots(folders, tmp_path, capsys):
    src, dst = folders
    png = tmp_path / "c.png"
    assert cli(["faceset", "coverage", str(src), str(dst), "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "100 real, 6 synthetic" in out and "thin bins" in out and "yaw -30..-15" in out
    assert f"coverage plot written to {png}" in out and cv2.imread(str(png)) is not None
    # default PNG: beside SRC, never inside it (a PNG in the folder would be taken for a face)
    assert cli(["faceset", "coverage", str(src) + "/", str(dst), "--min-dst", "1"]) == 0
    assert (src.parent / "fs_src.coverage.png").is_file() and not list(src.glob("*.png"))
    assert "yaw -60..-45, pitch +0..+15" in capsys.readouterr().out.split("thin bins")[1]  # far left now counts
    assert cli(["faceset", "coverage", str(src), str(dst), "--json", "--no-plot"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"] == {"src": 100, "synthetic": 6, "dst": 52}
    assert folder_coverage(src, dst).totals["synthetic"] == 6


def test_cli_coverage_bad_input_is_one_line(folders, tmp_path, capsys):
    src, _ = folders
    assert cli(["faceset", "coverage", str(src), str(tmp_path / "nope"), "--no-plot"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope" in err and "no such faceset folder" in err
    assert cli(["faceset", "coverage", str(src), str(src), "--fraction", "0"]) == 2
    assert "--fraction" in capsys.readouterr().err


def test_info_counts_synthetic_faces_apart(folders):
    info = faceset_info(folders[0])
    assert info["count"] == 106 and info["real"] == 100 and info["synthetic"] == 6
    assert info["sources"] == {"clip.mp4": 100, "generator:g": 6}
    assert "106 faces (100 real, 6 synthetic)" in format_info(info, ascii_only=True)
