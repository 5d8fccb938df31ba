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
from facelab.faceset.coverage import expression_features
from facelab.faceset.index import load_metas
from facelab.faceset.store import read_face
from facelab.geometry.align import align_face
from facelab.geometry.facetype import FaceType
from facelab.geometry.openness import eye_aspect_ratio, mouth_aspect_ratio
from facelab.geometry.pose import head_pose
from facelab.geometry.umeyama import apply_affine, umeyama
from facelab.imaging.color import rct
from facelab.imaging.masks import hull_mask
from facelab.io.atomic import ensure_writable_dir, leaves_no_empty_dirs
from facelab.io.media import iter_frames
from facelab.io.paths import refuse_overlap

log = logging.getLogger(__name__)

REGION_SIZE = 128  # px of the dst-aligned region used for flicker and thumbnails
SWAPPED_FACES_DIR = "swapped_faces"
DST_FACES_DIR = "dst_faces"
FID_KEYS = ("fid_src", "kid_src", "fid_dst", "kid_dst")
# What a reader can trust at which sample size (written into every report).
TRUST_NOTES = (
    "trust: identity distances and identity_transfer are medians over frames, steady from ~30 frames; "
    "FID needs thousands of faces (below 2048 it is biased upwards and only comparable at equal N) - prefer KID "
    "with its std; per-bin figures on fewer than 30 frames, and follow correlations on fewer than 60, are noisy",
)


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
    gaze: list[float] = field(default_factory=list)  # degrees per frame; NaN where FaceMesh found no iris
    dst_crop: list[np.ndarray] = field(default_factory=list)  # dst face aligned like the src faceset
    dst_crop_lm: list[np.ndarray] = field(default_factory=list)  # its landmarks in the crop
    skipped: list[int] = field(default_factory=list)
    size: tuple[int, int] = (0, 0)

    def subset(self, keep: list[int]) -> _Frames:
        """The frames at positions ``keep`` (a bin)."""
        out = _Frames(skipped=self.skipped, size=self.size)
        for name in ("index", "dst_lm", "swp_lm", "dst_desc", "swp_desc", "dst_region", "swp_region", "swp_sharp",
                     "gaze", "dst_crop", "dst_crop_lm"):  # fmt: skip
            values = getattr(self, name)
            setattr(out, name, [values[i] for i in keep] if values else [])
        return out


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


@dataclass
class _Src:
    """The src faceset as evaluate sees it: descriptors of (up to ``max_faces`` evenly spaced) real faces, every
    ``HELD_APART``-th of them kept out of the identity centroid as the best-case control."""

    desc: np.ndarray  # (N, 128) the centroid's faces
    held: np.ndarray  # (M, 128) held apart
    sharp: np.ndarray  # (N + M,)
    face_type: str
    size: int
    mean_face: np.ndarray  # (size, size, 3) uint8: the pixel mean of the aligned faces, a blurred average face
    mean_lm: np.ndarray  # (68, 2) their mean landmarks in it

    @property
    def centroid(self) -> np.ndarray:
        return self.desc.mean(0)


HELD_APART = 5  # every 5th src face is held apart from the identity centroid (the best-case control)


def _src_faces(folder: str | Path, describer: Any, max_faces: int) -> _Src:
    """Descriptors come from the aligned crops and their aligned landmarks; synthetic faces are left out."""
    metas = [(p, m) for p, m in load_metas(folder) if not m.synthetic] or load_metas(folder)
    step = max(1, math.ceil(len(metas) / max_faces))
    descs, sharp, total, lms = [], [], None, []
    for path, _ in metas[::step]:
        img, meta = read_face(path)
        descs.append(describer.describe(img, meta.landmarks))
        sharp.append(M.sharpness([img], [meta.landmarks])[0])
        total = np.zeros(img.shape, np.float64) if total is None else total
        if img.shape == total.shape:  # every face of a faceset has one size; an odd one stays out of the mean
            total += img
            lms.append(meta.landmarks)
    d = np.array(descs)
    held = np.arange(len(d)) % HELD_APART == HELD_APART - 1 if len(d) >= HELD_APART else np.zeros(len(d), bool)
    assert total is not None  # load_metas refuses a faceset without faces
    mean_face = np.round(total / len(lms)).astype(np.uint8)
    first = metas[0][1]
    return _Src(d[~held], d[held], np.array(sharp), first.face_type, int(first.size), mean_face, np.mean(lms, 0))


def _collect(
    dst_video: str | Path,
    swapped_video: str | Path,
    finder: Any,
    describer: Any,
    face_type: str,
    face_size: int,
    faces_dirs: dict[str, Path] | None,
    max_frames: int | None,
    iris: Any,
) -> _Frames:
    """Frame-by-frame faces of both videos. ``iris`` (a FaceMesh landmarker) gives the gaze of faces whose
    landmarks have no iris points; swapped and dst crops aligned like the src go to ``faces_dir/{swapped,dst}``."""
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
        dcrop, dm = align_face(d.image, df.points, face_type, face_size)
        fr.dst_crop.append(dcrop)
        fr.dst_crop_lm.append(apply_affine(dm, df.points))
        smesh, dmesh = _iris_mesh(s.image, sf, iris), _iris_mesh(d.image, df, iris)
        ok = smesh is not None and dmesh is not None
        fr.gaze.append(float(M.gaze_angle_error([smesh], [dmesh])[0]) if ok else float("nan"))
        if faces_dirs is not None:
            for sub, img in (("swapped", crop), ("dst", dcrop)):
                cv2.imwrite(str(faces_dirs[sub] / f"{idx:06d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return fr


def _iris_mesh(image: np.ndarray, face: Any, iris: Any) -> np.ndarray | None:
    """The face's FaceMesh with iris points: its own if the finder gave one, else ``iris`` run on its box."""
    if face.mesh is not None and len(face.mesh) >= M.MESH_IRIS_POINTS:
        return face.mesh
    lm = iris.landmarks(image, face.box)
    return lm.mesh if lm is not None and lm.mesh is not None and len(lm.mesh) >= M.MESH_IRIS_POINTS else None


def _region_mask(fr: _Frames) -> np.ndarray:
    """Face hull of the mean dst landmarks in region coordinates (the region follows the dst face)."""
    pts = []
    for lm in fr.dst_lm:
        _, m = align_face(np.zeros((2, 2, 3), np.uint8), lm, FaceType.WHOLE_FACE, REGION_SIZE)
        pts.append(apply_affine(m, lm))
    return hull_mask((REGION_SIZE, REGION_SIZE), np.mean(pts, 0), brow_expand=0.0) > 0


def compute_metrics(fr: _Frames, src_desc: np.ndarray, src_sharp: np.ndarray) -> tuple[dict, list[dict]]:
    """Summary metrics and per-frame rows from collected frames (identity against ``src_desc``'s mean)."""
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
    gaze = np.array(fr.gaze, np.float64)
    ok = np.isfinite(gaze)
    out["gaze_err"] = _metric(float(gaze[ok].mean()) if ok.any() else math.nan, int(ok.sum()), unit="deg")
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
            "gaze_err": fr.gaze[i] if math.isfinite(fr.gaze[i]) else None,
        }
        for i in range(n)
    ]
    return out, rows


MIN_BIN_FRAMES = 3  # a bin with fewer frames reports its metrics as null
MIN_BIN_FID = 10  # ... and its FID/KID below this many faces
DEGRADE_SIGMAS = (0.0, 0.5, 0.8, 1.2, 1.6, 2.0, 2.5, 3.0, 4.0, 5.0, 6.5, 8.0, 10.0, 13.0)  # Gaussian blurs tried (px)


def expression_name(landmarks68: np.ndarray) -> str:
    """``open_or_smiling`` (inner lips >= OPEN_MOUTH IOD apart, or corners >= SMILING above the lip line: faceset
    coverage's features) or ``neutral``."""
    mouth, smile = expression_features(landmarks68)
    busy = (math.isfinite(mouth) and mouth >= M.OPEN_MOUTH) or (math.isfinite(smile) and smile >= M.SMILING)
    return "open_or_smiling" if busy else "neutral"


def _bins(fr: _Frames) -> dict[str, list[int]]:
    """Frame positions per reported bin of the dst face: ``yaw:<lo>..<hi>`` and ``expression:<name>``."""
    out: dict[str, list[int]] = {f"yaw:{lo:g}..{hi:g}": [] for lo, hi in M.YAW_BINS}
    out.update({"expression:neutral": [], "expression:open_or_smiling": []})
    for i, lm in enumerate(fr.dst_lm):
        yaw, _, _ = head_pose(lm, fr.size)
        out[M.yaw_bin(yaw)].append(i)
        out[f"expression:{expression_name(lm)}"].append(i)
    return out


def _blurred_to(crop: np.ndarray, lm: np.ndarray, target: float) -> np.ndarray:
    """``crop`` under the first blur of DEGRADE_SIGMAS that brings its sharpness to ``target`` or below."""
    blurred = crop
    for sigma in DEGRADE_SIGMAS:
        blurred = cv2.GaussianBlur(crop, (0, 0), sigma) if sigma > 0 else crop
        if M.sharpness([blurred], [lm])[0] <= target:
            break
    return blurred


def _degraded_descriptors(fr: _Frames, describer: Any) -> np.ndarray:
    """dlib descriptors of the dst faces blurred to the swap's median sharpness (the no-transfer control)."""
    target = float(np.median(fr.swp_sharp))
    return np.array([describer.describe(_blurred_to(c, lm, target), lm) for c, lm in zip(fr.dst_crop, fr.dst_crop_lm)])


def _mean_face_descriptors(fr: _Frames, src: _Src, describer: Any) -> np.ndarray:
    """dlib descriptors of the src's mean face put on each dst face as merge puts a swap (onto its landmarks, inside
    the landmark hull, colours matched by rct, merge's default) and blurred to the swap's median sharpness: what a
    model that learned only the src's average face would give. dlib reads it as the src: on p2_to_p1 closer to the
    src (0.35) than a 30-minute cpu-quick swap (0.37) or a 300-iteration blob (0.44)."""
    target = float(np.median(fr.swp_sharp))
    out = []
    for crop, lm in zip(fr.dst_crop, fr.dst_crop_lm):
        h, w = crop.shape[:2]
        placed = cv2.warpAffine(src.mean_face, umeyama(src.mean_lm, lm)[:2], (w, h), borderMode=cv2.BORDER_REPLICATE)
        hull = hull_mask((h, w), lm)
        alpha = cv2.GaussianBlur(hull, (0, 0), h / 48)[..., None]
        dst = crop.astype(np.float32) / 255
        face = rct(placed.astype(np.float32) / 255, dst, hull, hull)
        blob = np.round(np.clip(dst * (1 - alpha) + face * alpha, 0, 1) * 255).astype(np.uint8)
        out.append(describer.describe(_blurred_to(blob, lm, target), lm))
    return np.array(out)


def _identity_controls(fr: _Frames, src: _Src, degraded: np.ndarray, mean_face: np.ndarray) -> dict[str, Any]:
    """Median distances to the src centroid of the swap and its controls, and the control-normalised score. The
    src's mean face as a blob on the dst (``src_mean_face``) is listed beside them: a bar for a swap to clear."""
    c = src.centroid
    med = {
        "swap": float(np.median(np.linalg.norm(np.array(fr.swp_desc) - c, axis=1))),
        "src_held_apart": float(np.median(np.linalg.norm(src.held - c, axis=1))) if len(src.held) else math.nan,
        "dst_own": float(np.median(np.linalg.norm(np.array(fr.dst_desc) - c, axis=1))),
        "dst_degraded": float(np.median(np.linalg.norm(degraded - c, axis=1))),
        "src_mean_face": float(np.median(np.linalg.norm(mean_face - c, axis=1))),
    }
    score = M.identity_transfer(med["swap"], med["src_held_apart"], med["dst_degraded"])
    return _metric(
        score, len(fr.index), controls={k: round(v, 4) if math.isfinite(v) else None for k, v in med.items()},
        n_src_held_apart=len(src.held),
        definition="(dst_degraded - swap) / (dst_degraded - src_held_apart), median dlib distances to the src "
        "centroid: 1 = like held-apart src frames, 0 = like the dst blurred to the swap's sharpness",
    )  # fmt: skip


def _fid_metrics(
    src_dir: Path, faces_dirs: dict[str, Path], weights: str | Path | None, bins: dict[str, list[int]]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """FID and KID of the swapped faces against the src faceset (identity) and against the dst's own faces (the
    seed's figure), overall and per bin (one Inception pass per image)."""
    from facelab.evaluate.fid import dir_features
    from facelab.evaluate.frechet import fid_from_features, kid, small_sample_warning
    from facelab.evaluate.inception import load_fid_inception

    model = load_fid_inception(weights)
    feats = {"src": dir_features(model, src_dir), **{k: dir_features(model, d) for k, d in faces_dirs.items()}}

    def pair(ref: str, rows: list[int] | None) -> dict[str, dict[str, Any]]:
        sw = feats["swapped"] if rows is None else feats["swapped"][rows]
        other = feats[ref] if rows is None or ref == "src" else feats[ref][rows]
        n = min(len(sw), len(other))
        if n < (2 if rows is None else MIN_BIN_FID):
            why = {"reason": f"{n} faces: too few for FID/KID (at least {MIN_BIN_FID} per bin)"}
            return {f"fid_{ref}": _metric(math.nan, n, **why), f"kid_{ref}": _metric(math.nan, n, std=None, **why)}
        k = kid(other, sw, subsets=100, subset_size=1000, rng=0)
        warn = small_sample_warning(len(other), len(sw))
        return {
            f"fid_{ref}": _metric(fid_from_features(other, sw).fid, n, n_ref=len(other), n_swapped=len(sw),
                                  warning=warn),
            f"kid_{ref}": _metric(k.mean, n, std=k.std, subset_size=min(1000, len(other), len(sw))),
        }  # fmt: skip

    overall = {**pair("src", None), **pair("dst", None)}
    per_bin = {name: {**pair("src", rows), **pair("dst", rows)} for name, rows in bins.items()}
    return overall, per_bin


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
    reuse loaded models). Gaze comes from FaceMesh's iris points whatever ``landmarker`` is (FaceMesh runs on the
    found boxes when the landmarks have none). FID/KID compare the swapped faces, aligned like the src faceset
    (saved to ``out_dir/swapped_faces``), with the src faceset's images and with the dst's own faces aligned the
    same way (``out_dir/dst_faces``). Every metric is also reported per bin of the dst face (``bins``)."""
    from facelab.faces.finder import FaceFinder
    from facelab.faces.identity import FaceDescriber
    from facelab.faces.landmarks.facemesh import FaceMeshLandmarker

    dirs = {"swapped": Path(out_dir) / SWAPPED_FACES_DIR, "dst": Path(out_dir) / DST_FACES_DIR}
    refuse_overlap(
        {"src faceset": src_faceset, "dst video": dst_video, "swapped video": swapped_video},
        {"-o": out_dir},
        emptied={"-o": dirs["swapped"], "-o (dst faces)": dirs["dst"]} if with_fid else None,  # stale faces go
    )
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}

    def lap(step: str) -> None:
        seconds[step] = time.perf_counter() - t0 - sum(seconds.values())

    out = ensure_writable_dir(Path(out_dir), "-o")
    finder = finder or FaceFinder(landmarker=landmarker)
    describer = describer or FaceDescriber()
    iris = FaceMeshLandmarker()
    src = _src_faces(src_faceset, describer, max_src_faces)
    lap("src_faces")  # model loading included
    faces_dirs = {k: ensure_writable_dir(d) for k, d in dirs.items()} if with_fid else None
    for stale in [p for d in (faces_dirs or {}).values() for p in d.glob("*.png")]:
        stale.unlink()  # a rerun into the same folder must not mix old faces into FID
    try:
        fr = _collect(
            dst_video, swapped_video, finder, describer, src.face_type, src.size, faces_dirs, max_frames, iris
        )
    finally:
        iris.close()
    if len(fr.index) < 1:
        raise FacelabError(f"no frame with a face in both {dst_video} and {swapped_video}")
    lap("frames")
    summary, rows = compute_metrics(fr, src.desc, src.sharp)
    degraded = _degraded_descriptors(fr, describer)
    mean_face = _mean_face_descriptors(fr, src, describer)
    summary["identity_transfer"] = _identity_controls(fr, src, degraded, mean_face)
    bins = _bins(fr)
    per_bin: dict[str, dict[str, Any]] = {}
    for name, pos in bins.items():
        if len(pos) < MIN_BIN_FRAMES:
            why = f"{len(pos)} frames: too few (at least {MIN_BIN_FRAMES})"
            per_bin[name] = {k: {"value": None, "n": len(pos), "reason": why} for k in [*summary, *FID_KEYS]}
            continue
        sub = fr.subset(pos)
        metrics, _ = compute_metrics(sub, src.desc, src.sharp)
        metrics["identity_transfer"] = _identity_controls(sub, src, degraded[pos], mean_face[pos])
        per_bin[name] = metrics
    lap("metrics")
    notes = []
    if faces_dirs is not None:
        fid_all, fid_bins = _fid_metrics(Path(src_faceset), faces_dirs, inception_weights, bins)
        summary.update(fid_all)
        summary["fid"], summary["kid"] = summary["fid_src"], summary["kid_src"]  # the names of evaluate/1
        for name, values in fid_bins.items():
            per_bin[name].update({k: v for k, v in values.items() if k not in per_bin[name]})
        if summary["fid_src"].get("warning"):
            notes.append(f"FID/KID: {summary['fid_src']['warning']}")
    else:
        notes.append("FID/KID skipped (with_fid=False)")
    if fr.skipped:
        notes.append(f"{len(fr.skipped)} frame(s) skipped: no face in the dst or the swapped frame")
    if summary["gaze_err"]["n"] < len(fr.index):
        notes.append(f"gaze error on {summary['gaze_err']['n']} of {len(fr.index)} frames (FaceMesh found no iris)")
    notes.extend(TRUST_NOTES)
    report = {
        "version": M.METRICS_VERSION,
        "inputs": {"src": str(src_faceset), "dst": str(dst_video), "swapped": str(swapped_video)},
        "frames": {"evaluated": len(fr.index), "skipped": fr.skipped, "src_faces": len(src.desc) + len(src.held)},
        "metrics": summary,
        "bins": per_bin,
        "per_frame": rows,
        "notes": notes,
    }
    lap("fid")  # ~0 without FID
    json_path, html_path = out / "report.json", out / "report.html"
    json_path.write_text(json.dumps(report, indent=2))
    html_path.write_text(render_html(report, _worst_frames(fr, rows)))
    lap("write")
    seconds["total"] = time.perf_counter() - t0
    return EvaluateResult(report, json_path, html_path, faces_dirs["swapped"] if faces_dirs else None, seconds)


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
