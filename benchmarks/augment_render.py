"""3D re-rendering (``facelab augment render``) on a real faceset of one person: speed, pass rates, pose accuracy.

Extracts one talking-head clip of ../shared/data (every 4th frame; mostly frontal), then renders every face with each
yaw change (+-15, +-30, +-45 and 0 as the control), each pitch change (+-15) and each expression at strength 1, as
the command does (re-detection, identity filter against the faceset's mean descriptor). Per edit it prints:
renders/s of the whole command and of drawing alone, detection pass rate, identity pass rate (kept / rendered),
pose error (measured minus requested change, median and p90 of its absolute value), and for expressions the change
of the re-detected mouth-width / jaw-width ratio (points 48-54 over 0-16), mouth aspect ratio and eye aspect ratio
against each render's own source face.

Usage: .venv/bin/python benchmarks/augment_render.py [--video videos/person_p1_lp_d3.mp4] [--every 4] [--preview]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as `python benchmarks/augment_render.py`: make `benchmarks` importable
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks.common import REPO, data_parser, fmt, print_table, require_data, write_json  # noqa: E402
from facelab.augment.render.draw import Edit, MouthTexture, draw  # noqa: E402
from facelab.augment.render.stage import render_faces  # noqa: E402
from facelab.augment.render.worker import Renderer, RenderSetup  # noqa: E402
from facelab.config import ExtractConfig, RenderConfig  # noqa: E402
from facelab.extract.pipeline import extract  # noqa: E402
from facelab.faceset.index import load_metas  # noqa: E402
from facelab.geometry.openness import eye_aspect_ratio, mouth_aspect_ratio  # noqa: E402

GROUPS: dict[str, list[Edit]] = {
    "yaw 0 (control)": [Edit()],
    "yaw +-15": [Edit(15), Edit(-15)],
    "yaw +-30": [Edit(30), Edit(-30)],
    "yaw +-45": [Edit(45), Edit(-45)],
    "pitch +-15": [Edit(0, 15), Edit(0, -15)],
    "smile 1": [Edit(expressions=(("smile", 1.0),))],
    "mouth-open 1": [Edit(expressions=(("mouth-open", 1.0),))],
    "eyes-closed 1": [Edit(expressions=(("eyes-closed", 1.0),))],
}


def mouth_jaw(lm: np.ndarray) -> float:
    return float(np.linalg.norm(lm[54] - lm[48]) / np.linalg.norm(lm[16] - lm[0]))


def main() -> None:
    p = data_parser(__doc__)
    p.add_argument("--video", default="videos/person_p1_lp_d3.mp4", help="clip of one person, under --data")
    p.add_argument("--every", type=int, default=4, help="extract every Nth frame")
    p.add_argument("--preview", action="store_true", help="write a preview sheet per group to bench-output/")
    a = p.parse_args()
    data = require_data(a.data, a.video)
    work = REPO / "bench-output" / "augment_render" / Path(a.video).stem
    faceset = work / "faceset"
    if not (faceset / "extract-summary.json").exists():
        extract(data / a.video, faceset, ExtractConfig(size=256, every=a.every))
    real = [(path, m) for path, m in load_metas(faceset) if not m.synthetic]
    yaws = np.array([m.yaw for _, m in real])
    print(f"{len(real)} faces of {a.video}; source yaw median {np.median(yaws):+.1f}, |yaw| p90 "
          f"{np.percentile(np.abs(yaws), 90):.1f} degrees")  # fmt: skip
    draw_rate = _draw_rate(real)
    rows, figures = [], {"faces": len(real), "draw_only_per_s": draw_rate, "groups": {}}
    for name, edits in GROUPS.items():
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "renders"
            preview = work / f"preview_{name.split()[0]}_{name.split()[1].replace('+-', '')}.png" if a.preview else None
            rep = render_faces(faceset, out, edits, RenderConfig(), preview=preview)
            g = _group_figures(rep, real, out)
        figures["groups"][name] = g
        rows.append(
            [name, g["rendered"], fmt(g["per_s"], 1), fmt(g["detected"] * 100, 0, "%"), fmt(g["identity"] * 100, 0, "%"),
             fmt(g["yaw_err_median"], 1), fmt(g["yaw_err_p90"], 1), fmt(g["pitch_err_median"], 1),
             fmt(g.get("mouth_jaw_change"), 1, "%"), fmt(g.get("mar_change"), 2), fmt(g.get("ear_change"), 2)]
        )  # fmt: skip
    print_table(
        f"augment render on {a.video} (256 px, 2 cores): per edit",
        ["edit", "n", "renders/s", "detected", "identity", "|yaw err| med", "p90", "|pitch err| med",
         "mouth/jaw", "MAR", "EAR"],
        rows,
        notes=[
            f"drawing alone (lift + deform + turn + z-buffer), no re-detection: {draw_rate:.1f} renders/s",
            "renders/s: the whole command per render (draw, re-detect, align, identity); identity = kept / rendered",
            "yaw/pitch err: |measured - source - requested| in degrees on the re-detected, re-aligned 68 points",
            "mouth/jaw: change of (48-54)/(0-16) vs each render's source; MAR, EAR: change of the aspect ratios",
        ],
    )  # fmt: skip
    write_json(a.json, figures)


def _draw_rate(real: list[tuple[Path, Any]], n: int = 12) -> float:
    face = real[0][1]
    renderer = Renderer(RenderSetup(real[:n], np.zeros(128), face.face_type, face.size, MouthTexture.dark()))
    models = [renderer.model(i) for i in range(min(n, len(real)))]
    renderer.close()
    models = [m for m in models if m is not None]
    t0 = time.perf_counter()
    for m in models:
        draw(m, Edit(30))
    return len(models) / (time.perf_counter() - t0)


def _group_figures(rep: Any, real: list[tuple[Path, Any]], out: Path) -> dict[str, Any]:
    stats = list(rep.per_edit.values())
    rendered = sum(s.rendered for s in stats)
    yaw_err = np.abs(np.concatenate([s.yaw_error for s in stats])) if rendered else np.array([])
    pitch_err = np.abs(np.concatenate([s.pitch_error for s in stats])) if rendered else np.array([])
    g: dict[str, Any] = {
        "rendered": rendered,
        "per_s": rep.rate,
        "detected": sum(s.detected for s in stats) / max(rendered, 1),
        "identity": sum(s.kept for s in stats) / max(rendered, 1),
        "yaw_err_median": float(np.median(yaw_err)) if yaw_err.size else None,
        "yaw_err_p90": float(np.percentile(yaw_err, 90)) if yaw_err.size else None,
        "pitch_err_median": float(np.median(pitch_err)) if pitch_err.size else None,
    }
    by_name = {path.name: m for path, m in real}
    kept = [m for _, m in load_metas(out)] if out.is_dir() and any(out.glob("render_*")) else []
    if kept and kept[0].extra.get("expressions"):
        src = [by_name[m.extra["source_face"]].landmarks for m in kept]
        dst = [m.landmarks for m in kept]
        g["mouth_jaw_change"] = 100 * float(np.median([mouth_jaw(d) / mouth_jaw(s) - 1 for s, d in zip(src, dst)]))
        g["mar_change"] = float(np.median([mouth_aspect_ratio(d) - mouth_aspect_ratio(s) for s, d in zip(src, dst)]))
        g["ear_change"] = float(np.median([eye_aspect_ratio(d) - eye_aspect_ratio(s) for s, d in zip(src, dst)]))
    return g


if __name__ == "__main__":
    main()
