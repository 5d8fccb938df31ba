"""Extraction speed, end to end (decode -> detect -> landmarks -> refine -> smooth -> align -> JPEG on disk),
next to decode-only speed of the same clip measured in the same run.

Usage: .venv/bin/python benchmarks/extract_speed.py [--data ../shared/data] [--repeat 2]
Target (issue 2): >= 30 frames/s end to end on the 720p clip on a 2-core machine; issue 19: >= 66 with the
default models (``--jobs 2`` runs two face finders side by side over the cores).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from facelab.config import ExtractConfig
from facelab.extract.pipeline import extract
from facelab.io.media import iter_frames

CLIPS = {
    "720p (person_p6_lp_s18, 1280x720)": "videos/person_p6_lp_s18.mp4",
    "512x512 talking head (person_p1_lp_d3)": "videos/person_p1_lp_d3.mp4",
}


def decode_fps(path: Path) -> tuple[int, float]:
    t = time.perf_counter()
    n = sum(1 for _ in iter_frames(path))
    return n, n / (time.perf_counter() - t)


def extract_fps(path: Path, cfg: ExtractConfig) -> tuple[int, int, float]:
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        s = extract(path, out, cfg, force=True)
        return s.frames_read, s.faces_written, s.frames_read / (time.perf_counter() - t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--repeat", type=int, default=2, help="runs per measurement; the best is reported")
    a = ap.parse_args()
    if not (a.data / "videos").is_dir():
        print(f"extract_speed: test media not found at {a.data} (pass --data)", file=sys.stderr)
        return 2
    configs = {
        "default (mediapipe + auto, refine, smooth, 512 px JPEG)": ExtractConfig(),
        "default, --jobs 2 (two face finders in threads)": ExtractConfig(jobs=2),
        "dlib68 landmarks (the default before auto)": ExtractConfig(landmarker="dlib68"),
        "no refine": ExtractConfig(refine=False),
        "facemesh landmarks": ExtractConfig(landmarker="facemesh"),
    }
    print(f"{'clip':42} {'configuration':56} {'frames':>6} {'faces':>6} {'fps':>7} {'decode fps':>10} {'ratio':>6}")
    for label, rel in CLIPS.items():
        path = a.data / rel
        n, dec = max((decode_fps(path) for _ in range(a.repeat)), key=lambda r: r[1])
        speeds = {}
        for cname, cfg in configs.items():
            frames, faces, fps = max((extract_fps(path, cfg) for _ in range(a.repeat)), key=lambda r: r[2])
            speeds[cname] = fps
            print(f"{label:42} {cname:56} {frames:6d} {faces:6d} {fps:7.1f} {dec:10.1f} {fps / dec:6.2f}")
        auto, jobs2, dlib = list(speeds.values())[:3]
        print(f"{label:42} {'auto / dlib68 speed':56} {'':6} {'':6} {auto / dlib:7.2f}")
        print(f"{label:42} {'--jobs 2 / --jobs 1 speed':56} {'':6} {'':6} {jobs2 / auto:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
