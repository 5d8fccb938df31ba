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

    .venv/bin/python benchmarks/stability.py [--data ../shared/data] [--clips NAME ...] [--json OUT]
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
from facelab.faceset.store import iter_faceset  # noqa: E402
from facelab.geometry.umeyama import apply_affine  # noqa: E402

CLIPS = ("person_p1_lp_d3.mp4", "person_p6_lp_s18.mp4")
MOUTH = slice(48, 68)  # iBUG mouth points: the fastest real motion while talking, where lag would show first
SIZE = 256


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


def main() -> int:
    parser = data_parser(__doc__)
    parser.add_argument("--clips", nargs="+", default=list(CLIPS), help="clip names in videos/ (default: %(default)s)")
    args = parser.parse_args()
    data = require_data(args.data, *(f"videos/{c}" for c in args.clips))
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
    print(
        f"\nAcceptance\n  {verdict(passed)}  smoothing lowers mean frame-to-frame aligned landmark motion ({len(args.clips)} clips)"
    )
    write_json(args.json, figures)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
