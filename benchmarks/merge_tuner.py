"""Merge tuner re-render time: one 1280x720 frame merged with a 128-px model, from a cached model prediction
(what a settings change in the studio's merge tuner costs) vs a fresh one (a frame seen for the first time).

The dst is the first frames of ``videos/person_p6_lp_s18.mp4`` (1280x720) from the real-media set, cut to a short
clip and extracted; the model is freshly initialised (speed does not depend on training). Each figure is the median
of several renders of one frame (already decoded), each with other blending settings; the studio adds a PNG
encode (shown too) and the HTTP round trip.

Usage: .venv/bin/python benchmarks/merge_tuner.py [--data ../shared/data] [--repeats 7]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import torch

if __package__ in (None, ""):  # run as `python benchmarks/merge_tuner.py`: make the `benchmarks` package importable
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks.common import data_parser, require_data, write_json  # noqa: E402
from facelab.config import ExtractConfig, MergeConfig, ModelConfig, TrainConfig  # noqa: E402
from facelab.extract.pipeline import extract  # noqa: E402
from facelab.io.media import iter_frames  # noqa: E402
from facelab.io.video import VideoWriter  # noqa: E402
from facelab.merge.frame import FrameRenderer  # noqa: E402
from facelab.train.loop import Trainer  # noqa: E402

CLIP = "videos/person_p6_lp_s18.mp4"
FRAMES = 12
VARIANTS = [  # what a user changes between renders
    MergeConfig(erode=e, blur=b, color=c, motion_blur=m)
    for e, b, c, m in [
        (0, 64, "rct", 0),
        (20, 64, "rct", 0),
        (20, 120, "rct", 0),
        (20, 120, "lct", 0),
        (-10, 32, "rct", 50),
    ]
]


def ms(f) -> float:
    t = time.perf_counter()
    f()
    return (time.perf_counter() - t) * 1000


def main() -> int:
    p = data_parser(__doc__)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--archi", default="liae-ud")
    a = p.parse_args()
    data = require_data(a.data, CLIP)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = tmp / "dst.mp4"
        with VideoWriter(clip, None, fps=30) as w:
            for f in iter_frames(data / CLIP):
                if f.index >= FRAMES:
                    break
                w.write(f.image, f.index / 30)
        extract(clip, tmp / "fs", ExtractConfig(size=256))
        mcfg = replace(ModelConfig(), archi=a.archi, resolution=128)
        tcfg = replace(TrainConfig(), pretrain=True, workers=0, preview_every=0)
        Trainer(tmp / "fs", tmp / "fs", tmp / "model", mcfg, tcfg).run(1)
        r = FrameRenderer(clip, tmp / "model", tmp / "fs")
        i = FRAMES // 2
        img = r.frames[i]
        h, w = img.shape[:2]
        fresh, cached, png = [], [], []
        for k in range(a.repeats):
            cfg = VARIANTS[k % len(VARIANTS)]
            r.forget_predictions()
            fresh.append(ms(lambda cfg=cfg: r.render(i, cfg)))
            for v in VARIANTS:
                out = None

                def run(v=v) -> None:
                    nonlocal out
                    out = r.render(i, v)

                cached.append(ms(run))
                png.append(ms(lambda out=out: cv2.imencode(".png", out, [cv2.IMWRITE_PNG_COMPRESSION, 1])))
        load = os.getloadavg()[0]
        print(
            f"frame {w}x{h}, {a.archi} @128, torch threads {torch.get_num_threads()}, {os.cpu_count()} cores, "
            f"load average {load:.1f} (other jobs running)"
        )
        print(
            f"re-render, cached prediction: median {statistics.median(cached):.0f} ms "
            f"(min {min(cached):.0f}, max {max(cached):.0f}, n={len(cached)})"
        )
        print(
            f"render, fresh prediction:     median {statistics.median(fresh):.0f} ms "
            f"(min {min(fresh):.0f}, max {max(fresh):.0f}, n={len(fresh)})"
        )
        print(f"PNG encode for the page:      median {statistics.median(png):.0f} ms")
        figures = {"cached_ms": statistics.median(cached), "fresh_ms": statistics.median(fresh)}
        write_json(a.json, {**figures, "png_ms": statistics.median(png), "load_average": load, "size": [w, h]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
