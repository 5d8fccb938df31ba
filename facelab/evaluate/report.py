"""``facelab evaluate``: score a swap (src faceset, dst video, swapped video) and write report.json + report.html.

Faces are found frame by frame in the dst and swapped videos with the extraction stage's FaceFinder; frame i of
one is compared with frame i of the other. Every metric is stored as ``{"value", "n", "version"}`` so a number
is never read without its sample size or the definition that produced it. The page itself is drawn by
``facelab.evaluate.page``; this module computes and prints.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facelab.errors import FacelabError
from facelab.evaluate import metrics as M
from facelab.evaluate.page import WorstFrame, render_html
from facelab.evaluate.table import METRIC_LABELS, format_value, metric_rows
from facelab.faceset.index import load_metas
from facelab.faceset.store import read_face
from facelab.geometry.align import align_face
from facelab.geometry.facetype import FaceType
from facelab.geometry.openness import eye_aspect_ratio, mouth_aspect_ratio
from facelab.geometry.umeyama import apply_affine
from facelab.imaging.masks import hull_mask
from facelab.io.atomic import ensure_writable_dir, leaves_no_empty_dirs
from facelab.io.media import iter_frames
from facelab.io.paths import refuse_overlap

log = logging.getLogger(__name__)

REGION_SIZE = 128  # px of the dst-aligned region used for flicker and thumbnails
SWAPPED_FACES_DIR = "swapped_faces"


@dataclass
class _Frames:
    """Per-frame data of frames where both the dst and the swapped face were found."""

    index: list[int] = field(default_factory=list)
    dst_lm: list[np.ndarray] = field(default_factory=list)
    swp_lm: list[np.ndarray] = field(default_factory=list)
    dst_desc: list[np.ndarray] = field(default_factory=list)
    swp_desc: list[np.ndarray] = field(default_factory=list)
    dst_region: list[np.ndarray] = field(default_factory=list)  # dst face region, dst alignment
    swp_region: list[np.ndarray] = field(default_factory=list)  # same region of the swapped frame
    swp_sharp: list[float] = field(default_factory=list)
    gaze: list[float] = field(default_factory=list)  # per frame, only while both faces have FaceMesh iris points
    skipped: list[int] = field(default_factory=list)
    size: tuple[int, int] = (0, 0)


@dataclass
class EvaluateResult:
    """What ``evaluate`` wrote and measured."""

    report: dict[str, Any]  # the content of report.json
    json_path: Path
    html_path: Path
    faces_dir: Path | None  # the swapped faces aligned like the src faceset (FID's input); None without FID
    seconds: dict[str, float]  # wall time per step: src_faces, frames, metrics, fid, write, total

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        return self.report["metrics"]

    @property
    def frames(self) -> int:
        """Frames evaluated (a face in both the dst and the swapped frame)."""
        return int(self.report["frames"]["evaluated"])

    def summary(self) -> str:
        """What the CLI prints: one line per metric, the notes, then where the page is."""
        return f"{format_summary(self)}\nreport: {self.html_path}"


def _metric(value: float, n: int, **extra: Any) -> dict[str, Any]:
    v = float(value)
    return {"value": v if math.isfinite(v) else None, "n": int(n), "version": M.METRICS_VERSION, **extra}


def _nearest(faces: list, ref: np.ndarray) -> Any:
    """The face whose landmark centre is closest to ``ref``'s (the swapped face replacing that dst face)."""
    c = ref.mean(0)
    return min(faces, key=lambda f: float(np.linalg.norm(f.points.mean(0) - c)))


def _src_faces(folder: str | Path, describer: Any, max_faces: int) -> tuple[np.ndarray, np.ndarray, str, int]:
    """Descriptors (N, 128), sharpness (N,), face type and crop size of (up to ``max_faces`` evenly spaced) src
    faces. Descriptors come from the aligned crops and their aligned landmarks."""
    metas = load_metas(folder)
    step = max(1, math.ceil(len(metas) / max_faces))
    descs, sharp = [], []
    for path, _ in metas[::step]:
        img, meta = read_face(path)
        descs.append(describer.describe(img, meta.landmarks))
        sharp.append(M.sharpness([img], [meta.landmarks])[0])
    return np.array(descs), np.array(sharp), metas[0][1].face_type, int(metas[0][1].size)


def _collect(
    dst_video: str | Path,
    swapped_video: str | Path,
    finder: Any,
    describer: Any,
    face_type: str,
    face_size: int,
    faces_dir: Path | None,
    max_frames: int | None,
) -> _Frames:
    fr = _Frames()
    for n, (d, s) in enumerate(zip(iter_frames(dst_video), iter_frames(swapped_video))):
        if max_frames is not None and n >= max_frames:
            break
        idx = d.index if d.index is not None else n
        dfaces = finder.find(d.image, max_faces=1)
        sfaces = finder.find(s.image) if dfaces else []
        if not sfaces:
            fr.skipped.append(idx)
            continue
        df, sf = dfaces[0], _nearest(sfaces, dfaces[0].points)
        h, w = d.image.shape[:2]
        fr.size = (w, h)
        fr.index.append(idx)
        fr.dst_lm.append(df.points)
        fr.swp_lm.append(sf.points)
        fr.dst_desc.append(describer.describe(d.image, df.points))
        fr.swp_desc.append(describer.describe(s.image, sf.points))
        # Flicker compares the same pixels of both videos, so both use the dst face's alignment.
        reg_d, _ = align_face(d.image, df.points, FaceType.WHOLE_FACE, REGION_SIZE, "linear")
        reg_s, _ = align_face(s.image, df.points, FaceType.WHOLE_FACE, REGION_SIZE, "linear")
        fr.dst_region.append(reg_d)
        fr.swp_region.append(reg_s)
        # Sharpness and FID use the swapped face aligned like the src faceset, so the two sets are comparable.
        crop, m = align_face(s.image, sf.points, face_type, face_size)
        fr.swp_sharp.append(float(M.sharpness([crop], [apply_affine(m, sf.points)])[0]))
        if _has_iris(df) and _has_iris(sf):
            fr.gaze.append(float(M.gaze_error([sf.mesh], [df.mesh])[0]))
        if faces_dir is not None:
            cv2.imwrite(str(faces_dir / f"{idx:06d}.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    return fr


def _has_iris(face: Any) -> bool:
    return face.mesh is not None and len(face.mesh) >= M.MESH_IRIS_POINTS


def _region_mask(fr: _Frames) -> np.ndarray:
    """Face hull of the mean dst landmarks in region coordinates (the region follows the dst face)."""
    pts = []
    for lm in fr.dst_lm:
        _, m = align_face(np.zeros((2, 2, 3), np.uint8), lm, FaceType.WHOLE_FACE, REGION_SIZE)
        pts.append(apply_affine(m, lm))
    return hull_mask((REGION_SIZE, REGION_SIZE), np.mean(pts, 0), brow_expand=0.0) > 0


def _fid(src: Path, faces_dir: Path, weights: str | Path | None) -> dict[str, Any]:
    from facelab.evaluate.fid import fid_dirs

    r = fid_dirs(src, faces_dir, weights=weights)
    n = min(r["n_a"], r["n_b"])
    extra = {"n_src": r["n_a"], "n_swapped": r["n_b"], "warning": r["warning"], "resize": r["resize"]}
    return {
        "fid": _metric(r["fid"], n, **extra, weights=r["weights"]),
        "kid": _metric(r["kid_mean"], n, std=r["kid_std"], subset_size=r["kid_subset_size"]),
    }


def compute_metrics(fr: _Frames, src_desc: np.ndarray, src_sharp: np.ndarray) -> tuple[dict, list[dict]]:
    """Summary metrics and per-frame rows from collected frames."""
    n = len(fr.index)
    sw, dd = np.array(fr.swp_desc), np.array(fr.dst_desc)
    ids = M.identity_scores(sw, src_desc.mean(0), dd, src_gallery=src_desc)
    to_src = np.linalg.norm(sw - src_desc.mean(0), axis=1)
    to_dst = np.linalg.norm(sw - dd, axis=1)
    swp_lm, dst_lm = np.array(fr.swp_lm), np.array(fr.dst_lm)
    pose = M.pose_error(swp_lm, dst_lm, fr.size)
    expr = M.expression_error(swp_lm, dst_lm)
    swp_sharp = np.array(fr.swp_sharp)
    sharp_ratio = M.sharpness_ratio(swp_sharp, src_sharp)
    flicker = M.flicker_ratio(np.array(fr.swp_region), np.array(fr.dst_region), _region_mask(fr))
    jit_s, jit_d = M.landmark_jitter(swp_lm), M.landmark_jitter(dst_lm)
    out = {
        "id_dist_src": _metric(ids["dist_src_mean"], n, median=ids["dist_src_median"]),
        "id_dist_dst": _metric(ids["dist_dst_mean"], n, median=ids["dist_dst_median"]),
        "id_frac_src": _metric(ids["frac_src"], n, threshold=M.SAME_PERSON),
        "id_retrieval": _metric(ids["id_retrieval"], n, gallery_src=len(src_desc), gallery_dst=n),
        "pose_err_yaw": _metric(pose[:, 0].mean(), n, unit="deg"),
        "pose_err_pitch": _metric(pose[:, 1].mean(), n, unit="deg"),
        "pose_err_roll": _metric(pose[:, 2].mean(), n, unit="deg"),
        "pose_err_l2": _metric(np.linalg.norm(pose, axis=1).mean(), n, unit="deg"),
        "expression_err": _metric(expr.mean(), n, unit="outer-eye distance"),
        # does the swap blink and speak when the dst does (issue: eyes that never close)
        "eye_follow": _metric(M.follow_correlation(eye_aspect_ratio(swp_lm), eye_aspect_ratio(dst_lm)), n),
        "mouth_follow": _metric(M.follow_correlation(mouth_aspect_ratio(swp_lm), mouth_aspect_ratio(dst_lm)), n),
        "flicker_ratio": _metric(flicker, n),
        "landmark_jitter_swapped": _metric(jit_s, n),
        "landmark_jitter_dst": _metric(jit_d, n),
        "landmark_jitter_ratio": _metric(jit_s / jit_d if jit_d > 0 else float("nan"), n),
        "sharpness_ratio": _metric(sharp_ratio, n, n_src=len(src_sharp)),
    }
    if fr.gaze and len(fr.gaze) == n:
        out["gaze_err"] = _metric(float(np.mean(fr.gaze)), n, unit="eye width")
    rows = [
        {
            "frame": fr.index[i],
            "id_dist_src": float(to_src[i]),
            "id_dist_dst": float(to_dst[i]),
            "yaw_err": float(pose[i, 0]),
            "pitch_err": float(pose[i, 1]),
            "roll_err": float(pose[i, 2]),
            "expression_err": float(expr[i]),
            "sharpness": float(swp_sharp[i]),
            **({"gaze_err": fr.gaze[i]} if "gaze_err" in out else {}),
        }
        for i in range(n)
    ]
    return out, rows


@leaves_no_empty_dirs("out_dir")
def evaluate(
    src_faceset: str | Path,
    dst_video: str | Path,
    swapped_video: str | Path,
    out_dir: str | Path,
    inception_weights: str | Path | None = None,
    with_fid: bool = True,
    max_frames: int | None = None,
    max_src_faces: int = 300,
    finder: Any = None,
    describer: Any = None,
    landmarker: str = "dlib68",
) -> EvaluateResult:
    """Score a swap; writes ``out_dir/report.json`` and ``out_dir/report.html`` and returns what it wrote.

    ``finder``/``describer`` default to the extraction stage's FaceFinder and FaceDescriber (pass them in to
    reuse loaded models; ``landmarker="facemesh"`` adds the gaze error from its iris points). FID/KID compare the src faceset's images with the swapped faces aligned like them
    (saved to ``out_dir/swapped_faces``)."""
    from facelab.faces.finder import FaceFinder
    from facelab.faces.identity import FaceDescriber

    refuse_overlap(
        {"src faceset": src_faceset, "dst video": dst_video, "swapped video": swapped_video},
        {"-o": out_dir},
        emptied={"-o": Path(out_dir) / SWAPPED_FACES_DIR if with_fid else None},  # stale faces are deleted
    )
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}

    def lap(step: str) -> None:
        seconds[step] = time.perf_counter() - t0 - sum(seconds.values())

    out = ensure_writable_dir(Path(out_dir), "-o")
    finder = finder or FaceFinder(landmarker=landmarker)
    describer = describer or FaceDescriber()
    src_desc, src_sharp, face_type, face_size = _src_faces(src_faceset, describer, max_src_faces)
    lap("src_faces")  # model loading included
    faces_dir = ensure_writable_dir(out / SWAPPED_FACES_DIR) if with_fid else None
    for stale in faces_dir.glob("*.png") if faces_dir else []:
        stale.unlink()  # a rerun into the same folder must not mix old faces into FID
    fr = _collect(dst_video, swapped_video, finder, describer, face_type, face_size, faces_dir, max_frames)
    if len(fr.index) < 1:
        raise FacelabError(f"no frame with a face in both {dst_video} and {swapped_video}")
    lap("frames")
    summary, rows = compute_metrics(fr, src_desc, src_sharp)
    lap("metrics")
    notes = []
    if with_fid:
        summary.update(_fid(Path(src_faceset), faces_dir, inception_weights))
        if summary["fid"]["warning"]:
            notes.append(f"FID/KID: {summary['fid']['warning']}")
    else:
        notes.append("FID/KID skipped (with_fid=False)")
    if fr.skipped:
        notes.append(f"{len(fr.skipped)} frame(s) skipped: no face in the dst or the swapped frame")
    if "gaze_err" not in summary:
        notes.append("gaze error not computed: needs FaceMesh iris points in every frame (landmarker='facemesh')")
    report = {
        "version": M.METRICS_VERSION,
        "inputs": {"src": str(src_faceset), "dst": str(dst_video), "swapped": str(swapped_video)},
        "frames": {"evaluated": len(fr.index), "skipped": fr.skipped, "src_faces": len(src_desc)},
        "metrics": summary,
        "per_frame": rows,
        "notes": notes,
    }
    lap("fid")  # ~0 without FID
    json_path, html_path = out / "report.json", out / "report.html"
    json_path.write_text(json.dumps(report, indent=2))
    html_path.write_text(render_html(report, _worst_frames(fr, rows)))
    lap("write")
    seconds["total"] = time.perf_counter() - t0
    return EvaluateResult(report, json_path, html_path, faces_dir, seconds)


def _worst_frames(fr: _Frames, rows: list[dict], k: int = 4) -> list[WorstFrame]:
    """(frame, distance to src, swapped region, dst region) of the k frames least like the src identity."""
    order = sorted(range(len(rows)), key=lambda i: -rows[i]["id_dist_src"])[:k]
    return [(rows[i]["frame"], rows[i]["id_dist_src"], fr.swp_region[i], fr.dst_region[i]) for i in order]


# ---- text ---------------------------------------------------------------------------------------------------


def format_summary(report: EvaluateResult | dict[str, Any]) -> str:
    """A one-screen text summary of a result or a report dict: one line per metric with its N, then notes."""
    r = _load(report)
    fr = r["frames"]
    lines = [
        f"facelab evaluate ({r['version']}): {fr['evaluated']} frames, {len(fr['skipped'])} skipped, "
        f"{fr['src_faces']} src faces",
    ]
    lines += [f"  {label:<40} {format_value(v['value']):>10}   N={v['n']}" for _, label, v in metric_rows(r)]
    lines += [f"note: {n}" for n in r.get("notes", [])]
    return "\n".join(lines)


def _load(r: EvaluateResult | dict[str, Any] | str | Path) -> dict[str, Any]:
    if isinstance(r, EvaluateResult):
        return r.report
    if isinstance(r, dict):
        return r
    p = Path(r)
    if not p.exists():
        raise FacelabError(f"{p}: no such file or folder (give a report.json or the folder holding one)")
    f = p / "report.json" if p.is_dir() else p
    if not f.is_file():
        raise FacelabError(f"{p}: no report.json in this folder (not a 'facelab evaluate' report folder)")
    try:
        report = json.loads(f.read_text(encoding="utf-8"))
    except OSError as e:
        raise FacelabError(f"{f}: cannot read ({e.strerror or e})") from e
    except UnicodeDecodeError as e:
        raise FacelabError(f"{f}: not a facelab evaluate report (not UTF-8 JSON text)") from e
    except ValueError as e:  # json.JSONDecodeError
        raise FacelabError(f"{f}: not a facelab evaluate report (not JSON: {e})") from e
    if not isinstance(report, dict) or not isinstance(report.get("metrics"), dict):
        raise FacelabError(f'{f}: not a facelab evaluate report (no "metrics" object)')
    return report


def compare(
    report_a: EvaluateResult | dict[str, Any] | str | Path, report_b: EvaluateResult | dict[str, Any] | str | Path
) -> str:
    """Metrics of two reports (results, dicts, report.json paths or report folders) side by side, with B - A."""
    a, b = _load(report_a), _load(report_b)
    lines = [f"{'metric':<40} {'A':>10} {'B':>10} {'B - A':>10}   N (A/B)"]
    if a.get("version") != b.get("version"):
        lines.append(f"warning: metric versions differ ({a.get('version')} vs {b.get('version')})")
    for key, label in METRIC_LABELS:
        va, vb = a["metrics"].get(key), b["metrics"].get(key)
        if va is None and vb is None:
            continue
        xa, xb = (va or {}).get("value"), (vb or {}).get("value")
        diff = format_value(xb - xa) if xa is not None and xb is not None else "n/a"
        na, nb = (va or {}).get("n", "-"), (vb or {}).get("n", "-")
        lines.append(f"{label:<40} {format_value(xa):>10} {format_value(xb):>10} {diff:>10}   {na}/{nb}")
    return "\n".join(lines)
