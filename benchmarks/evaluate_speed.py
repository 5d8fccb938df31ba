"""Evaluate speed (issue 5, acceptance 4): frames/s of ``facelab evaluate``'s full per-frame metric set on this
CPU, split by metric group, with FID/KID timed separately (its cost scales with the number of images, not frames).

The dst is the first ``--frames`` frames of a shared person clip and the "swapped" video is the same clip (the same
work as a real swap: two face searches and two descriptors per frame); the src faceset is extracted beforehand from
another person's clip and its extraction is not timed. Decode-only frames/s of the clip is the baseline. Both
landmarkers are measured: dlib68 (the default, no gaze) and facemesh (adds the gaze error from its iris points).

Usage: .venv/bin/python benchmarks/evaluate_speed.py [--data ../shared/data] [--frames 120] [--no-fid]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/evaluate_speed.py`: make `benchmarks` importable
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks.common import data_parser, print_table, require_data, write_json  # noqa: E402
from facelab.config import ExtractConfig  # noqa: E402
from facelab.evaluate import report as R  # noqa: E402
from facelab.extract.pipeline import extract  # noqa: E402
from facelab.faces.finder import FaceFinder  # noqa: E402
from facelab.faces.identity import FaceDescriber  # noqa: E402
from facelab.io.media import iter_frames  # noqa: E402


class Timed:
    """Proxy that adds the wall time of one method of ``inner`` to ``totals[name]``."""

    def __init__(self, inner: Any, method: str, name: str, totals: dict[str, float]) -> None:
        self._inner, self._method, self._name, self._totals = inner, method, name, totals

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._inner, attr)
        if attr != self._method:
            return value

        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return value(*args, **kwargs)
            finally:
                self._totals[self._name] += time.perf_counter() - t

        return timed


def timed_function(fn: Callable[..., Any], name: str, totals: dict[str, float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[name] += time.perf_counter() - t

    return wrapper


def decode_fps(clip: Path, frames: int) -> float:
    t = time.perf_counter()
    n = sum(1 for _, _ in zip(range(frames), iter_frames(clip)))
    return n / (time.perf_counter() - t)


def measure(src_fs: Path, clip: Path, frames: int, landmarker: str, with_fid: bool, out: Path) -> dict[str, Any]:
    """One evaluate run with every metric group timed; returns seconds per group and the report's frame count."""
    totals: dict[str, float] = defaultdict(float)
    finder = Timed(FaceFinder(landmarker=landmarker), "find", "faces", totals)  # model load not timed
    describer = Timed(FaceDescriber(), "describe", "descriptors", totals)
    from facelab.evaluate import fid as fid_module

    originals = {name: getattr(R, name) for name in ("_src_faces", "compute_metrics", "_fid", "render_html")}
    for name, fn in originals.items():
        setattr(R, name, timed_function(fn, name, totals))  # evaluate looks these up in its module at call time
    fid_originals = {name: getattr(fid_module, name) for name in ("dir_features", "fid_from_features")}
    for name, fn in fid_originals.items():
        setattr(fid_module, name, timed_function(fn, name, totals))  # FID = Inception features + Frechet distance
    timed_src = R._src_faces

    def src_faces(*args: Any, **kwargs: Any) -> Any:
        before = totals["descriptors"]
        try:
            return timed_src(*args, **kwargs)
        finally:
            totals["src_descriptors"] += totals["descriptors"] - before  # one-off cost, not per frame

    R._src_faces = src_faces
    try:
        t = time.perf_counter()
        result = R.evaluate(
            src_fs, clip, clip, out, with_fid=with_fid, max_frames=frames, finder=finder, describer=describer
        )
        total = time.perf_counter() - t
    finally:
        for name, fn in originals.items():
            setattr(R, name, fn)
        for name, fn in fid_originals.items():
            setattr(fid_module, name, fn)
    report = result.report  # report.json's content
    n = report["frames"]["evaluated"]
    src_desc = report["frames"]["src_faces"]
    groups = {
        "faces": totals["faces"],
        "descriptors": totals["descriptors"] - totals["src_descriptors"],
        "metrics": totals["compute_metrics"],
        "html": totals["render_html"],
    }
    per_frame_total = total - totals["_fid"] - totals["_src_faces"]
    groups["other"] = per_frame_total - sum(groups.values())  # decode, alignment, sharpness, gaze, crops for FID
    fid = report["metrics"].get("fid")
    return {
        "landmarker": landmarker,
        "frames": n,
        "total_s": total,
        "per_frame_s": per_frame_total,
        "fps": n / per_frame_total,
        "groups_s": groups,
        "src_faces": src_desc,
        "src_faces_s": totals["_src_faces"],
        "fid_s": totals["_fid"] if with_fid else None,
        "fid_images": (fid["n_src"] + fid["n_swapped"]) if fid else None,
        "fid_features_s": totals["dir_features"] if with_fid else None,
        "frechet_s": totals["fid_from_features"] if with_fid else None,
        "has_gaze": "gaze_err" in report["metrics"],
    }


def main() -> int:
    ap = data_parser(__doc__)
    ap.add_argument("--clip", default="videos/person_p1_lp_d3.mp4", help="dst (and swapped) clip inside --data")
    ap.add_argument("--src-clip", default="videos/person_p2_lp_d6.mp4", help="src faceset source inside --data")
    ap.add_argument("--src-every", type=int, default=10, help="keep one src frame in N (1008 frames -> 101 faces)")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--landmarkers", nargs="+", default=["dlib68", "facemesh"])
    ap.add_argument("--no-fid", action="store_true")
    a = ap.parse_args()
    data = require_data(a.data, a.clip, a.src_clip)
    clip = data / a.clip
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        extract(data / a.src_clip, tmp / "src_fs", ExtractConfig(size=256, every=a.src_every))
        base = decode_fps(clip, a.frames)
        runs = [measure(tmp / "src_fs", clip, a.frames, lm, not a.no_fid, tmp / f"report_{lm}") for lm in a.landmarkers]
    rows = []
    for r in runs:
        g = r["groups_s"]
        ms = {k: f"{1000 * v / r['frames']:.0f}" for k, v in g.items()}
        rows.append(
            [
                r["landmarker"] + (" (+gaze)" if r["has_gaze"] else ""),
                r["frames"],
                f"{r['fps']:.2f}",
                ms["faces"],
                ms["descriptors"],
                ms["metrics"],
                ms["html"],
                ms["other"],
            ]
        )
    notes = [
        f"decode-only baseline: {base:.1f} frames/s (the evaluate run decodes two streams)",
        "faces = detection + 68 landmarks (+ refinement) on the dst and the swapped frame; descriptors = two dlib "
        "128-D descriptors; metrics = pose, expression, flicker, jitter; html = plots + page; other = decode, "
        "alignment, sharpness, gaze, face crops written for FID",
    ]
    for r in runs:
        notes.append(f"{r['landmarker']}: src faceset descriptors {r['src_faces_s']:.1f} s for {r['src_faces']} faces")
        if r["fid_s"] is not None:
            notes.append(
                f"{r['landmarker']}: FID/KID {r['fid_s']:.1f} s for {r['fid_images']} images: Inception features "
                f"{r['fid_features_s']:.1f} s ({r['fid_images'] / r['fid_features_s']:.1f} images/s), Frechet "
                f"distance {r['frechet_s']:.1f} s (2048x2048 matrix square root); whole run {r['total_s']:.1f} s"
            )
    print_table(
        f"facelab evaluate speed, {a.frames} frames of {clip.name} (per-frame groups in ms/frame)",
        ["landmarker", "frames", "frames/s", "faces", "descriptors", "metrics", "html", "other"],
        rows,
        notes=notes,
    )
    write_json(a.json, {"decode_fps": base, "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
