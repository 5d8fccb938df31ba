"""Issue 4, acceptance 1: merge the dst of a real pair with a model from the training stage and check the output
against the dst: frame count and duration, audio packets, and pixels outside the pasted region.

Usage: .venv/bin/python benchmarks/merge_pair.py [--pair p2_to_p1] [--model bench-output/train_pair/model_cpu-quick]
(train the model first with benchmarks/train_pair.py)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import av
import cv2
import numpy as np

from facelab.config import ExtractConfig, MergeConfig
from facelab.extract.pipeline import extract
from facelab.faceset.index import load_metas
from facelab.io.media import iter_frames
from facelab.io.video import read_tag
from facelab.merge.pipeline import merge, pasted_region
from facelab.models.load import load_model

REPO = Path(__file__).resolve().parents[1]


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(*c.streams.audio) if p.size] if c.streams.audio else []


def duration(path: Path) -> float:
    with av.open(str(path)) as c:
        return float(c.duration) / 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--pair", default="p2_to_p1")
    ap.add_argument("--model", type=Path, default=REPO / "bench-output" / "train_pair" / "model_cpu-quick")
    ap.add_argument("--out", type=Path, default=REPO / "bench-output" / "merge_pair")
    a = ap.parse_args()
    if not (a.data / "pairs.json").exists() or not (a.model / "checkpoint").exists():
        print(f"merge_pair: need {a.data}/pairs.json and a trained model at {a.model}", file=sys.stderr)
        return 2
    pair = next(p for p in json.loads((a.data / "pairs.json").read_text())["pairs"] if p["name"] == a.pair)
    dst = a.data / pair["dst"]
    fs = a.out / "dst_faceset"
    extract(dst, fs, ExtractConfig(face_type="whole_face", size=256))
    video, frames_dir = a.out / "swapped.mp4", a.out / "swapped_frames"
    s = merge(dst, a.model, video, MergeConfig(), faceset=fs)
    merge(dst, a.model, frames_dir, MergeConfig(), faceset=fs)
    _, mcfg = load_model(a.model)
    n_dst = sum(1 for _ in iter_frames(dst))
    n_out = sum(1 for _ in iter_frames(video))
    checks = {
        f"frame count {n_out} == dst {n_dst}": n_out == n_dst,
        f"duration {duration(video):.3f} s == dst {duration(dst):.3f} s (within 1 frame)": abs(
            duration(video) - duration(dst)
        )
        <= 1 / 30 + 1e-3,
        "audio packets byte-identical to the dst's": audio_packets(video) == audio_packets(dst) != [],
        "synthetic-media tag present": read_tag(video) is not None,
    }
    lms: dict[int, list[np.ndarray]] = {}
    for _, m in load_metas(fs):
        lms.setdefault(m.frame_index, []).append(m.source_landmarks)
    identical = 0
    pngs = sorted(frames_dir.glob("*.png"))
    for png, frame in zip(pngs, iter_frames(dst)):
        got = cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB)
        region = np.zeros(got.shape[:2], bool)
        for lm in lms.get(frame.index, []):
            region |= pasted_region(lm, got.shape, mcfg.resolution, mcfg.face_type)
        identical += bool(np.array_equal(got[~region], frame.image[~region]))
    checks[f"PNG frames equal to the dst outside the pasted region: {identical}/{len(pngs)}"] = (
        identical == len(pngs) == n_dst
    )
    print(f"merged {s.frames} frames, {s.faces_swapped} faces, {s.fps:.1f} frames/s -> {video}")
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
