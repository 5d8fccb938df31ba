"""Frame-to-frame landmark stability of extraction on talking-head clips, with and without temporal smoothing.

Acceptance: "mean frame-to-frame landmark motion in aligned space on a talking-head clip is reported with and
without smoothing, and smoothing lowers it".

Each clip is extracted twice (``ExtractConfig(size=256, smooth=False / True)``, other settings default) and the
metadata read back from the faceset. Figures, over runs of consecutive frames with a face:

  (a) aligned motion: mean |delta| of the aligned landmarks between consecutive frames (px at 256, and % of 256);
  (b) aligned shake: mean |second difference| of the aligned landmarks (shake rather than steady motion);
  (c) crop motion: how far the crop's centre moves in the source frame (px), its second difference, and the
      change of the crop's side (%);
  (d) deviation: mean |smoothed - raw| source landmarks (px, and % of the face size), i.e. what smoothing
      moves the points by (lag and distortion together).

Landmark jumps (issue 21, item 4: "the fraction of frames whose landmarks jump is reported and no worse than
today"): on the person_* clips (turning heads, expressions), without smoothing, each landmark model in ``JUMP_MODELS``
runs with refine and the MediaPipe detector, ``FaceFinder(...).find(frame, 1)`` (the largest face), on every frame
(``--every N``: one in N). A frame jumps when the mean motion of its 68 source landmarks since the previous frame
(source px) is more than ``JUMP_FACTOR`` x that model's median motion on the clip; the share is over the frames that
follow a frame with a face. "Today" is ``dlib68`` (+ refine), the default before ``auto``; the table also counts the
frames on which ``auto`` took FaceMesh's points.

    .venv/bin/python benchmarks/stability.py [--data ../shared/data] [--clips NAME ...] [--jump-clips NAME ...]
        [--every N] [--json OUT]
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as `python benchmarks/stability.py`: make the `benchmarks` package importable
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks.common import data_parser, face_size, fmt, print_table, require_data, verdict, write_json  # noqa: E402
from facelab.config import ExtractConfig  # noqa: E402
from facelab.extract.pipeline import extract  # noqa: E402
from facelab.faces.finder import FaceFinder  # noqa: E402
from facelab.faceset.store import iter_faceset  # noqa: E402
from facelab.geometry.umeyama import apply_affine  # noqa: E402
from facelab.io.media import iter_frames  # noqa: E402

CLIPS = ("person_p1_lp_d3.mp4", "person_p6_lp_s18.mp4")
MOUTH = slice(48, 68)  # iBUG mouth points: the fastest real motion while talking, where lag would show first
SIZE = 256
JUMP_MODELS = ("dlib68", "auto", "facemesh")  # dlib68: "today" (the default before auto)
JUMP_DETECTOR = "mediapipe"
JUMP_FACTOR = 3.0  # a jump: frame-to-frame motion above this many times the clip's median motion


@dataclass
class Track:
    """Per-frame geometry of the first (largest) face of each frame, in frame order."""

    frames: np.ndarray  # (N,) frame indices
    aligned: np.ndarray  # (N, 68, 2) aligned px
    source: np.ndarray  # (N, 68, 2) source px
    centre: np.ndarray  # (N, 2) crop centre in source px
    side: np.ndarray  # (N,) crop side in source px
    fps: float  # extraction speed, frames per second


def extract_track(clip: Path, smooth: bool) -> Track:
    with tempfile.TemporaryDirectory(prefix="facelab-stability-") as tmp:
        summary = extract(clip, tmp, ExtractConfig(size=SIZE, smooth=smooth))
        metas = sorted((m for _, m in iter_faceset(tmp) if m.face_index == 0), key=lambda m: m.frame_index)
    centre = np.array([apply_affine(m.inverse, np.array([[SIZE / 2, SIZE / 2]]))[0] for m in metas])
    side = np.array([SIZE * np.sqrt(abs(np.linalg.det(m.inverse[:, :2]))) for m in metas])
    return Track(
        np.array([m.frame_index for m in metas]),
        np.array([m.landmarks for m in metas]),
        np.array([m.source_landmarks for m in metas]),
        centre,
        side,
        summary.fps,
    )


def consecutive(frames: np.ndarray, span: int) -> np.ndarray:
    """Start positions i such that frames[i : i + span + 1] are consecutive frame numbers."""
    starts = np.arange(len(frames) - span)
    return starts[frames[starts + span] - frames[starts] == span] if len(starts) else starts


def mean_norm(x: np.ndarray) -> float:
    """Mean Euclidean norm over the last axis (NaN when empty)."""
    return float(np.linalg.norm(x, axis=-1).mean()) if x.size else float("nan")


def first_diff(x: np.ndarray, frames: np.ndarray) -> np.ndarray:
    i = consecutive(frames, 1)
    return x[i + 1] - x[i]


def second_diff(x: np.ndarray, frames: np.ndarray) -> np.ndarray:
    i = consecutive(frames, 2)
    return x[i + 2] - 2 * x[i + 1] + x[i]


def motion_figures(t: Track) -> dict[str, float]:
    side_change = first_diff(t.side, t.frames) / t.side[consecutive(t.frames, 1)]
    return {
        "frames_with_face": len(t.frames),
        "aligned_motion_px": mean_norm(first_diff(t.aligned, t.frames)),
        "aligned_shake_px": mean_norm(second_diff(t.aligned, t.frames)),
        "crop_centre_motion_px": mean_norm(first_diff(t.centre, t.frames)),
        "crop_centre_shake_px": mean_norm(second_diff(t.centre, t.frames)),
        "crop_side_change_pct": 100 * float(np.abs(side_change).mean()) if side_change.size else float("nan"),
        "extract_fps": t.fps,
    }


def deviation_figures(raw: Track, smoothed: Track) -> dict[str, float]:
    """How far smoothing moves the source landmarks, on frames both runs have a face."""
    common, ri, si = np.intersect1d(raw.frames, smoothed.frames, return_indices=True)
    if not len(common):
        return dict.fromkeys(("deviation_px", "deviation_pct", "deviation_p95_px", "deviation_mouth_px"), float("nan"))
    dist = np.linalg.norm(smoothed.source[si] - raw.source[ri], axis=-1)  # (frames, 68)
    per_frame = dist.mean(axis=1)
    sizes = np.array([face_size(p) for p in raw.source[ri]])
    return {
        "deviation_px": float(per_frame.mean()),
        "deviation_pct": float(100 * (per_frame / sizes).mean()),
        "deviation_p95_px": float(np.percentile(per_frame, 95)),
        "deviation_mouth_px": float(dist[:, MOUTH].mean()),
    }


ROWS = (  # (key, label, unit scale for a "% of 256" column or None)
    ("frames_with_face", "frames with a face", None),
    ("aligned_motion_px", "(a) aligned landmark motion, px @256", SIZE),
    ("aligned_shake_px", "(b) aligned landmark shake (2nd diff), px @256", SIZE),
    ("crop_centre_motion_px", "(c) crop centre motion in source, px", None),
    ("crop_centre_shake_px", "(c) crop centre shake (2nd diff), px", None),
    ("crop_side_change_pct", "(c) crop side change, %", None),
    ("extract_fps", "extraction speed, frames/s", None),
)


def print_clip(clip: str, raw: dict[str, float], smoothed: dict[str, float], dev: dict[str, float]) -> None:
    rows = []
    for key, label, size in ROWS:
        r, s = raw[key], smoothed[key]
        digits = 0 if key == "frames_with_face" else 3
        pct = f"{fmt(100 * r / size, 2)} -> {fmt(100 * s / size, 2)}" if size else ""
        rows.append([label, fmt(r, digits), fmt(s, digits), fmt(s / r if r else float("nan"), 2), pct])
    rows.append(["(d) |smoothed - raw| source landmarks, px", "", fmt(dev["deviation_px"], 3), "", ""])
    rows.append(["(d) ... as % of face size", "", fmt(dev["deviation_pct"], 2), "", ""])
    rows.append(["(d) ... 95th percentile over frames, px", "", fmt(dev["deviation_p95_px"], 3), "", ""])
    rows.append(["(d) ... mouth points (48-67) only, px", "", fmt(dev["deviation_mouth_px"], 3), "", ""])
    print_table(f"== {clip}", ["figure", "raw", "smoothed", "ratio", "% of 256 (raw -> smoothed)"], rows)


def jump_share(frames: np.ndarray, points: np.ndarray, step: int = 1) -> tuple[float, int]:
    """Share of steps whose mean landmark motion exceeds ``JUMP_FACTOR`` x the median motion, and the step count.

    ``frames``: (N,) frame numbers of a track, ``points``: (N, 68, 2) its landmarks; a step joins two faces
    ``step`` frames apart (steps over a frame without a face are not counted)."""
    i = np.flatnonzero(np.diff(frames) == step)
    if not len(i):
        return float("nan"), 0
    motion = np.linalg.norm(points[i + 1] - points[i], axis=-1).mean(axis=1)
    return float((motion > JUMP_FACTOR * np.median(motion)).mean()), len(i)


def landmark_tracks(clip: Path, finders: dict[str, FaceFinder], every: int) -> tuple[int, dict[str, dict]]:
    """Frames read, and per landmark model the raw track of the largest face: frame numbers, points, models used."""
    tracks = {name: {"frames": [], "points": [], "used": []} for name in finders}
    n = 0
    for frame in iter_frames(clip, every=every):
        n += 1
        for name, finder in finders.items():
            faces = finder.find(frame.image, 1)
            if faces:
                tracks[name]["frames"].append(frame.index)
                tracks[name]["points"].append(faces[0].points)
                tracks[name]["used"].append(faces[0].landmarker)
    return n, {
        name: {
            "frames": np.array(t["frames"], int),
            "points": np.array(t["points"]).reshape(-1, 68, 2),
            "used": t["used"],
        }
        for name, t in tracks.items()
    }


def jump_figures(clip: Path, finders: dict[str, FaceFinder], every: int) -> dict:
    n, tracks = landmark_tracks(clip, finders, every)
    out: dict = {"frames": n}
    for name, t in tracks.items():
        share, steps = jump_share(t["frames"], t["points"], every)
        out[name] = {"frames_with_face": len(t["frames"]), "steps": steps, "jump_share": share}
    if "auto" in tracks:
        out["auto"]["facemesh_frames"] = sum(u.startswith("facemesh") for u in tracks["auto"]["used"])
    return out


def print_jumps(jumps: dict[str, dict], every: int) -> None:
    def used(frames: int, n: int) -> str:
        return f"{n} ({fmt(100 * n / frames if frames else float('nan'), 1)} %)"

    rows = [
        [Path(c).stem, j["frames"], *(fmt(100 * j[m]["jump_share"], 1) for m in JUMP_MODELS)]
        + [used(j["frames"], j["auto"]["facemesh_frames"])]
        for c, j in jumps.items()
    ]
    frames = sum(j["frames"] for j in jumps.values())
    rows.append(
        ["all", frames, *(fmt(100 * _pooled(jumps, m), 1) for m in JUMP_MODELS)]
        + [used(frames, sum(j["auto"]["facemesh_frames"] for j in jumps.values()))]
    )
    print_table(
        f"== Landmark jumps: raw (unsmoothed) landmarks of the largest face, {JUMP_DETECTOR} + model + refine, "
        + ("every frame" if every == 1 else f"one frame in {every}"),
        ["clip", "frames", *(f"jump % {m}" for m in JUMP_MODELS), "auto used FaceMesh on N frames"],
        rows,
        notes=(
            f"jump: mean motion of the 68 source landmarks (source px) since the previous "
            f"{'' if every == 1 else 'sampled '}frame > {JUMP_FACTOR:g}x the model's median motion on the clip,",
            "as % of the steps between faces in consecutive frames; 'all' pools the steps of every clip",
        ),
    )


def _pooled(jumps: dict[str, dict], model: str) -> float:
    steps = sum(j[model]["steps"] for j in jumps.values())
    hits = sum(j[model]["jump_share"] * j[model]["steps"] for j in jumps.values() if j[model]["steps"])
    return hits / steps if steps else float("nan")


def main() -> int:
    parser = data_parser(__doc__)
    parser.add_argument("--clips", nargs="+", default=list(CLIPS), help="clip names in videos/ (default: %(default)s)")
    parser.add_argument(
        "--jump-clips",
        nargs="+",
        default=None,
        metavar="NAME",
        help="clips for the landmark-jump table (default: person_*)",
    )
    parser.add_argument("--every", type=int, default=1, metavar="N", help="jump table: one frame in N (default: 1)")
    args = parser.parse_args()
    data = require_data(args.data, *(f"videos/{c}" for c in args.clips + (args.jump_clips or [])))
    jump_clips = args.jump_clips or sorted(p.name for p in (data / "videos").glob("person_*.mp4"))
    cfg = ExtractConfig()
    print(
        f"extract: {cfg.detector} + {cfg.landmarker}{' + refine' if cfg.refine else ''}, {cfg.face_type} at {SIZE} px; "
        f"smoothing: One Euro, min_cutoff {cfg.smooth_min_cutoff} Hz, beta {cfg.smooth_beta}"
    )
    figures: dict[str, dict] = {}
    passed = True
    for clip in args.clips:
        t0 = time.perf_counter()
        raw_track = extract_track(data / "videos" / clip, smooth=False)
        smooth_track = extract_track(data / "videos" / clip, smooth=True)
        print(f"  extracted {clip} twice in {time.perf_counter() - t0:.1f} s", flush=True)
        raw, smoothed = motion_figures(raw_track), motion_figures(smooth_track)
        dev = deviation_figures(raw_track, smooth_track)
        print_clip(clip, raw, smoothed, dev)
        ok = (
            smoothed["aligned_motion_px"] < raw["aligned_motion_px"]
            and smoothed["aligned_shake_px"] < raw["aligned_shake_px"]
        )
        print(f"  {verdict(ok)}  smoothing lowers (a) aligned motion and (b) aligned shake")
        passed &= ok
        figures[clip] = {"raw": raw, "smoothed": smoothed, "deviation": dev, "pass": ok}
    t0 = time.perf_counter()
    finders = {m: FaceFinder(detector=JUMP_DETECTOR, landmarker=m, refine=True) for m in JUMP_MODELS}
    jumps = {}
    for clip in jump_clips:
        jumps[clip] = jump_figures(data / "videos" / clip, finders, max(args.every, 1))
        print(f"  landmarks of {clip}: {jumps[clip]['frames']} frames x {len(finders)} models", flush=True)
    for f in finders.values():
        f.close()
    print_jumps(jumps, max(args.every, 1))
    print(f"  landmark jumps measured in {time.perf_counter() - t0:.1f} s")
    no_worse = bool(jumps) and _pooled(jumps, "auto") <= _pooled(jumps, "dlib68")
    figures["landmark_jumps"] = {"every": max(args.every, 1), "factor": JUMP_FACTOR, "clips": jumps}
    print(
        f"\nAcceptance\n  {verdict(passed)}  smoothing lowers mean frame-to-frame aligned landmark motion ({len(args.clips)} clips)"
    )
    print(
        f"  {verdict(no_worse)}  landmark jumps with auto no more frequent than with dlib68 ({len(jumps)} clips pooled)"
    )
    write_json(args.json, figures)
    return 0 if passed and no_worse else 1


if __name__ == "__main__":
    sys.exit(main())
