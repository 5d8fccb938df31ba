"""Merge speed: frames/s of ``facelab merge`` with a 128-px model (liae-ud, DFL's default) at 720p and 512x512,
next to decode + encode-only frames/s of the same clip in the same run (the ceiling here).

Faces come from the dst faceset (``--faceset`` mode, as ``facelab swap`` merges) and, in a second row, are found
on the fly. The model is freshly initialised: speed does not depend on training.

Usage: .venv/bin/python benchmarks/merge_speed.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from facelab.config import ExtractConfig, MergeConfig, ModelConfig, TrainConfig
from facelab.extract.pipeline import extract
from facelab.io.media import iter_frames
from facelab.io.prefetch import prefetch
from facelab.io.video import VideoWriter
from facelab.merge.pipeline import merge
from facelab.train.loop import Trainer

CLIPS = {
    "1280x720 person_p6_lp_s18": "videos/person_p6_lp_s18.mp4",
    "512x512 person_p1_lp_d3": "videos/person_p1_lp_d3.mp4",
}


def transcode_fps(clip: Path, out: Path) -> float:
    t = time.perf_counter()
    n = 0
    with VideoWriter(out, clip) as w:
        for f in prefetch(iter_frames(clip)):
            w.write(f.image, f.timestamp)
            n += 1
    return n / (time.perf_counter() - t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--archi", nargs="+", default=["df-ud", "liae-ud"], help="models at 128 px to measure")
    a = ap.parse_args()
    if not (a.data / "videos").is_dir():
        print(f"merge_speed: test media not found at {a.data} (pass --data)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"{'clip':28} {'model':14} {'faces from':10} {'merge fps':>9} {'decode+encode fps':>18} {'ratio':>6}")
        for label, rel in CLIPS.items():
            clip = a.data / rel
            fs = tmp / f"fs_{clip.stem}"
            extract(clip, fs, ExtractConfig(size=256))
            base = transcode_fps(clip, tmp / "copy.mp4")
            for archi in a.archi:
                model = tmp / f"model_{clip.stem}_{archi}"
                mcfg = replace(ModelConfig(), archi=archi, resolution=128)
                tcfg = replace(TrainConfig(), pretrain=True, workers=0, preview_every=0)
                Trainer(fs, fs, model, mcfg, tcfg).run(1)
                for mode, faceset in (("faceset", fs), ("live", None)):
                    s = merge(clip, model, tmp / f"out_{mode}.mp4", MergeConfig(), faceset=faceset)
                    name = f"{archi} @128"
                    print(f"{label:28} {name:14} {mode:10} {s.fps:9.1f} {base:18.1f} {s.fps / base:6.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
