"""facelab.evaluate.metrics on synthetic landmarks, crops and descriptors; one small end-to-end report."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pytest

from facelab.evaluate import metrics as M
from facelab.geometry.landmarks68 import MEAN_FACE_3D

if TYPE_CHECKING:
    from facelab.evaluate.report import EvaluateResult

SIZE = (256, 256)


def project(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0, scale: float = 80.0) -> np.ndarray:
    """(68, 2) landmarks of the 3D mean face rotated by (yaw, pitch, roll) degrees, seen by head_pose's camera."""
    ry, rp, rr = (math.radians(a) for a in (yaw, pitch, roll))
    rx = np.array([[1, 0, 0], [0, math.cos(rp), -math.sin(rp)], [0, math.sin(rp), math.cos(rp)]])
    ryy = np.array([[math.cos(ry), 0, math.sin(ry)], [0, 1, 0], [-math.sin(ry), 0, math.cos(ry)]])
    rz = np.array([[math.cos(rr), -math.sin(rr), 0], [math.sin(rr), math.cos(rr), 0], [0, 0, 1]])
    f = float(max(SIZE))
    tz = f / scale
    pts = MEAN_FACE_3D @ (rz @ ryy @ rx).T + [0, 0, tz]
    return pts[:, :2] / pts[:, 2:] * f + np.array(SIZE) / 2


def test_identical_inputs_give_zero_pose_and_expression_error() -> None:
    lm = np.stack([project(5, -3, 2), project(-10, 4, 0)])
    assert np.allclose(M.pose_error(lm, lm, SIZE), 0, atol=1e-6)
    assert np.allclose(M.expression_error(lm, lm), 0, atol=1e-9)


def test_known_rotation_gives_expected_yaw_difference() -> None:
    err = M.pose_error(project(yaw=20)[None], project(yaw=0)[None], SIZE)[0]
    assert abs(err[0] - 20) < 3
    assert err[1] < 3 and err[2] < 3


def test_expression_error_ignores_similarity_but_sees_an_open_mouth() -> None:
    dst = project()
    c = dst.mean(0)
    rot = cv2.getRotationMatrix2D(tuple(c), 15, 1.3)
    moved = dst @ rot[:, :2].T + rot[:, 2] + [7, -4]
    assert M.expression_error(moved[None], dst[None])[0] < 1e-9
    open_mouth = dst.copy()
    open_mouth[57:60] += [0, 8]  # lower lip down
    open_mouth[65:68] += [0, 8]
    assert M.expression_error(open_mouth[None], dst[None])[0] > 0.01


def test_landmark_jitter_higher_for_shaky_sequence() -> None:
    base = project()
    t = np.arange(20)[:, None, None]
    smooth = base[None] + t * np.array([1.5, 0.5])  # constant velocity: zero second difference
    shaky = smooth + np.random.default_rng(0).normal(0, 1.0, smooth.shape)
    assert M.landmark_jitter(smooth) < 1e-9
    assert M.landmark_jitter(shaky) > 0.01
    assert math.isnan(M.landmark_jitter(smooth[:2]))


def test_flicker_ratio() -> None:
    rng = np.random.default_rng(1)
    frames = np.stack([np.full((32, 32, 3), 100 + 2 * i, np.float32) for i in range(6)])
    assert M.flicker_ratio(frames, frames) == pytest.approx(1.0)
    noisy = frames + rng.normal(0, 10, frames.shape)
    assert M.flicker_ratio(noisy, frames) > 2
    mask = np.zeros((32, 32), bool)
    mask[8:24, 8:24] = True
    assert M.flicker_ratio(frames, frames, mask) == pytest.approx(1.0)


def test_identity_scores_on_hand_made_descriptors() -> None:
    rng = np.random.default_rng(2)
    src = rng.normal(0, 0.1, 128)
    dst = rng.normal(0, 0.1, (4, 128))
    src_gallery = src + rng.normal(0, 0.01, (5, 128))
    good = src + rng.normal(0, 0.01, (4, 128))  # swaps that read as src
    s = M.identity_scores(good, src, dst, src_gallery)
    assert s["frac_src"] == 1.0 and s["id_retrieval"] == 1.0
    assert s["dist_src_mean"] < 0.6 < s["dist_dst_mean"]
    bad = dst + rng.normal(0, 0.001, (4, 128))  # the "swap" kept the dst identity
    s = M.identity_scores(bad, src, dst, src_gallery)
    assert s["id_retrieval"] == 0.0 and s["dist_dst_mean"] < 0.1
    half = np.concatenate([good[:2], bad[2:]])
    assert M.identity_scores(half, src, dst, src_gallery)["id_retrieval"] == 0.5


def test_sharpness_ratio(hopper: np.ndarray) -> None:
    crop = cv2.resize(hopper[:512, :512], (256, 256))
    lm = project(scale=80)
    blurred = cv2.GaussianBlur(crop, (0, 0), 3)
    sharp, blur = M.sharpness([crop], [lm]), M.sharpness([blurred], [lm])
    assert M.sharpness_ratio(sharp, sharp) == pytest.approx(1.0)
    assert M.sharpness_ratio(blur, sharp) < 0.5
    assert np.isnan(M.sharpness_ratio(blur, np.zeros(3)))


@pytest.fixture(scope="module")
def evaluated(
    tmp_path_factory: pytest.TempPathFactory, hopper: np.ndarray, astronaut: np.ndarray, finder
) -> EvaluateResult:
    from facelab.config import ExtractConfig
    from facelab.demo import write_motion_clip
    from facelab.evaluate.report import evaluate
    from facelab.extract.pipeline import extract

    tmp = tmp_path_factory.mktemp("evaluate")
    src_clip = write_motion_clip(hopper, tmp / "src.mp4", frames=8, size=256, audio=False)
    dst_clip = write_motion_clip(astronaut, tmp / "dst.mp4", frames=8, size=256, audio=False)
    extract(src_clip, tmp / "src_fs", ExtractConfig(size=256, every=2))
    # The "swap" is the src clip itself: a face of src identity in every frame.
    return evaluate(tmp / "src_fs", dst_clip, src_clip, tmp / "report", with_fid=False, finder=finder)


@pytest.fixture(scope="module")
def report(evaluated: EvaluateResult) -> Path:
    return evaluated.json_path.parent


def test_evaluate_returns_what_it_wrote(evaluated: EvaluateResult, report: Path) -> None:
    from facelab.evaluate.report import format_summary

    assert evaluated.json_path == report / "report.json" and evaluated.html_path == report / "report.html"
    assert evaluated.report == json.loads(evaluated.json_path.read_text())
    assert evaluated.faces_dir is None and evaluated.frames == evaluated.report["frames"]["evaluated"] >= 6
    assert evaluated.metrics is evaluated.report["metrics"]
    assert format_summary(evaluated) == format_summary(evaluated.report)
    assert evaluated.summary() == f"{format_summary(evaluated.report)}\nreport: {report / 'report.html'}"
    steps = ("src_faces", "frames", "metrics", "fid", "write")
    assert all(evaluated.seconds[k] >= 0 for k in steps) and evaluated.seconds["frames"] > 0
    assert sum(evaluated.seconds[k] for k in steps) == pytest.approx(evaluated.seconds["total"], abs=1e-3)


def test_evaluate_end_to_end(report: Path) -> None:
    data = json.loads((report / "report.json").read_text())
    assert data["version"] == M.METRICS_VERSION
    assert data["frames"]["evaluated"] >= 6
    for key in ("id_dist_src", "id_dist_dst", "id_frac_src", "id_retrieval", "pose_err_yaw", "expression_err"):
        m = data["metrics"][key]
        assert m["n"] == data["frames"]["evaluated"] and m["version"] == M.METRICS_VERSION
    for key in ("flicker_ratio", "landmark_jitter_ratio", "sharpness_ratio"):
        assert key in data["metrics"]
    # A hopper clip against hopper faces reads as src, not as the astronaut.
    assert data["metrics"]["id_retrieval"]["value"] == 1.0
    assert data["metrics"]["id_dist_src"]["value"] < 0.6 < data["metrics"]["id_dist_dst"]["value"]
    assert "fid" not in data["metrics"] and any("FID" in n for n in data["notes"])
    assert len(data["per_frame"]) == data["frames"]["evaluated"]
    page = (report / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 5 + 1
    assert '<table id="metrics">' in page


def test_summary_and_compare(report: Path) -> None:
    from facelab.evaluate.report import compare, format_summary

    data = json.loads((report / "report.json").read_text())
    text = format_summary(data)
    assert "ID retrieval" in text and len(text.splitlines()) < 30
    b = json.loads(json.dumps(data))
    b["metrics"]["id_dist_src"]["value"] += 0.1
    out = compare(report, b)
    line = next(ln for ln in out.splitlines() if ln.startswith("identity distance to src"))
    assert "0.1" in line


def _eye_mesh() -> np.ndarray:
    """A 478-point mesh with only the gaze points set: eyes 40 px wide, irises centred."""
    mesh = np.zeros((478, 3))
    for (iris, a, b, up, lo), x0 in zip(((468, 33, 133, 159, 145), (473, 362, 263, 386, 374)), (80, 150)):
        mesh[a, :2], mesh[b, :2] = (x0, 100), (x0 + 40, 100)
        mesh[up, :2], mesh[lo, :2] = (x0 + 20, 92), (x0 + 20, 108)
        mesh[iris, :2] = (x0 + 20, 100)
    return mesh


def test_gaze_error() -> None:
    straight = _eye_mesh()
    assert np.allclose(M.gaze_offsets(straight), 0)
    right = straight.copy()
    right[[468, 473], 0] += 8  # both irises 8 px = 0.2 eye widths along the eye axis
    assert M.gaze_error([straight], [straight])[0] == pytest.approx(0)
    assert M.gaze_error([straight], [right])[0] == pytest.approx(0.2)


def test_cli_evaluate_compare_and_usage(report: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from facelab.cli import main

    assert main(["evaluate", "compare", str(report), str(report)]) == 0
    assert "identity" in capsys.readouterr().out
    assert main(["evaluate", "--src", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert "usage: facelab evaluate" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "make, named",
    [
        (lambda d: d / "gone", "gone: no such file or folder"),
        (lambda d: (d / "run2").mkdir() or d / "run2", "run2: no report.json in this folder"),
        (lambda d: (d / "notes.json").write_text("metrics: good") and d / "notes.json", "notes.json: not a facelab"),
        (lambda d: (d / "list.json").write_text("[1, 2]") and d / "list.json", "list.json: not a facelab"),
        (lambda d: (d / "b.json").write_bytes(b"\xff\xfe\x00") and d / "b.json", "b.json: not a facelab"),
    ],
    ids=["missing", "folder without report.json", "not JSON", "JSON but not a report", "binary"],
)
def test_cli_evaluate_compare_bad_report_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make, named: str
) -> None:
    from facelab.cli import main

    good = tmp_path / "good.json"
    good.write_text(json.dumps({"version": "v", "metrics": {}}))
    bad = make(tmp_path)
    for argv in ([str(good), str(bad)], [str(bad), str(good)]):
        assert main(["evaluate", "compare", *argv]) == 2
        out, err = capsys.readouterr()
        assert err.startswith("facelab: error: ") and named in err and len(err.strip().splitlines()) == 1


def test_gaze_angles_and_identity_transfer() -> None:
    straight = _eye_mesh()
    assert np.allclose(M.gaze_angles(straight), 0)
    right = straight.copy()
    right[468, 0] += 8.0  # iris 0.2 eye widths towards a corner: 0.2 x 30 mm / 12 mm = 0.5 -> asin = 30 deg
    assert M.gaze_angles(right)[0, 0] == pytest.approx(30.0, abs=0.01)
    assert M.gaze_angle_error([straight], [right])[0] == pytest.approx(15.0, abs=0.01)  # one eye of two
    assert M.identity_transfer(swap=0.45, best=0.2, none=0.7) == pytest.approx(0.5)
    assert M.identity_transfer(swap=0.7, best=0.2, none=0.7) == pytest.approx(0.0)
    assert M.identity_transfer(swap=0.2, best=0.2, none=0.7) == pytest.approx(1.0)
    assert np.isnan(M.identity_transfer(swap=0.3, best=0.5, none=0.5))
    assert [M.yaw_bin(y) for y in (0, -14.9, 15, 29, -31, 80)] == [
        "yaw:0..15", "yaw:0..15", "yaw:15..30", "yaw:15..30", "yaw:30..90", "yaw:30..90"
    ]  # fmt: skip


def test_report_has_controls_gaze_and_bins(report: Path) -> None:
    data = json.loads((report / "report.json").read_text())
    m = data["metrics"]
    controls = m["identity_transfer"]["controls"]
    assert set(controls) == {"swap", "src_held_apart", "dst_own", "dst_degraded", "src_mean_face"}
    assert controls["swap"] < controls["dst_own"]  # the "swap" here is the src clip itself
    assert 0 <= controls["src_mean_face"] < 2  # the src's mean face as a blob on the dst, a finite distance
    # gaze from FaceMesh's iris points although the finder's landmarks have none
    assert m["gaze_err"]["unit"] == "deg" and m["gaze_err"]["n"] >= 1 and m["gaze_err"]["value"] >= 0
    assert set(data["bins"]) == {"yaw:0..15", "yaw:15..30", "yaw:30..90", "expression:neutral",
                                 "expression:open_or_smiling"}  # fmt: skip
    n_yaw = sum(b["id_dist_src"]["n"] for k, b in data["bins"].items() if k.startswith("yaw:"))
    assert n_yaw == data["frames"]["evaluated"]
    for b in data["bins"].values():
        assert {"id_dist_src", "identity_transfer", "gaze_err", "pose_err_l2"} <= set(b)
        if b["id_dist_src"]["n"] < 3:
            assert b["id_dist_src"]["value"] is None and "too few" in b["id_dist_src"]["reason"]
    assert any("trust:" in n for n in data["notes"])
    assert 'id="bins"' in (report / "report.html").read_text()


def test_fid_and_kid_against_src_and_dst(tmp_path: Path, hopper: np.ndarray, astronaut: np.ndarray, finder,
                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from test_fid import TinyExtractor

    import facelab.evaluate.inception as inception
    from facelab.config import ExtractConfig
    from facelab.demo import write_motion_clip
    from facelab.evaluate.report import evaluate
    from facelab.extract.pipeline import extract

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    monkeypatch.setattr(inception, "load_fid_inception", lambda weights=None: TinyExtractor())
    src_clip = write_motion_clip(hopper, tmp_path / "src.mp4", frames=6, size=256, audio=False)
    dst_clip = write_motion_clip(astronaut, tmp_path / "dst.mp4", frames=6, size=256, audio=False)
    extract(src_clip, tmp_path / "src_fs", ExtractConfig(size=128, every=2))
    data = evaluate(tmp_path / "src_fs", dst_clip, src_clip, tmp_path / "r", finder=finder).report
    m = data["metrics"]
    for key in ("fid_src", "fid_dst"):
        assert m[key]["value"] > 0 and m[key]["warning"]  # tiny sets: flagged
    for key in ("kid_src", "kid_dst"):
        assert m[key]["std"] is not None
    assert m["fid"] == m["fid_src"]  # evaluate/1's name kept
    assert len(list((tmp_path / "r" / "dst_faces").glob("*.png"))) == data["frames"]["evaluated"]
    b = next(iter(data["bins"].values()))
    assert b["fid_dst"]["value"] is None and "too few" in b["fid_dst"]["reason"]


def test_sharpness_ignores_the_blend_seam_of_a_blurred_face(hopper: np.ndarray) -> None:
    """A featureless face pasted with a hard edge along the jaw: the whole hull reads the seam as detail, the inner
    face (what ``sharpness`` measures) sees the blur."""
    from facelab.imaging.masks import hull_mask
    from facelab.imaging.sharpness import laplacian_sharpness

    crop = cv2.resize(hopper[:512, :512], (256, 256))
    lm = project(scale=80)
    blob = cv2.GaussianBlur(crop, (0, 0), 6)
    hull = cv2.erode(hull_mask((256, 256), lm), np.ones((9, 9), np.uint8))[..., None] > 0  # merge's eroded mask
    pasted = np.where(hull, blob, np.full_like(crop, 255))  # bright surroundings: a hard seam inside the hull
    whole = laplacian_sharpness(pasted, lm) / laplacian_sharpness(crop, lm)
    inner = M.sharpness([pasted], [lm])[0] / M.sharpness([crop], [lm])[0]
    assert inner < 0.2 < whole
    with pytest.raises(ValueError, match="region"):
        laplacian_sharpness(crop, lm, region="face")  # type: ignore[arg-type]
