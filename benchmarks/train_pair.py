"""Issue 3, acceptance 2: train a preset on a real swap pair for a fixed time and report what it learned.

Extracts both sides of a pair from ../shared/data/pairs.json (cached under bench-output/), trains
``--preset`` for ``--minutes``, then prints the first-100 vs last-100 iteration means of both reconstruction
losses, writes the loss curves, and checks that the swapped (dst->src) faces are found as faces by the extraction
stage's detector.

Usage: .venv/bin/python benchmarks/train_pair.py [--pair p2_to_p1] [--preset cpu-quick] [--minutes 20]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from facelab.config import ExtractConfig
from facelab.extract.pipeline import extract
from facelab.faces.finder import FaceFinder
from facelab.runs.loop import history_mean
from facelab.train.loop import Trainer
from facelab.train.presets import preset

REPO = Path(__file__).resolve().parents[1]


def swapped_faces_detected(trainer: Trainer, n: int = 32) -> tuple[int, int, np.ndarray]:
    """How many of ``n`` dst faces, swapped to src, the extraction detector finds a face in; and a sample strip."""
    idx = np.linspace(0, len(trainer.dst_bank) - 1, n).astype(int)
    dst = torch.from_numpy(trainer.dst_bank.images[idx].astype(np.float32).transpose(0, 3, 1, 2) / 255)
    trainer.model.eval()
    with torch.no_grad():
        face, _, _ = trainer.model.swap(dst.to(trainer.dist.device))
    imgs = (face.float().clamp(0, 1).cpu().numpy().transpose(0, 2, 3, 1) * 255).astype(np.uint8)
    finder = FaceFinder()
    found = 0
    for img in imgs:
        # a FULL-face crop is tight: give the detector the context a photo has (border, 2x upscale)
        big = cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
        pad = big.shape[0] // 2
        found += bool(finder.find(cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)))
    return found, n, np.concatenate(list(imgs[:8]), axis=1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--pair", default="p2_to_p1")
    ap.add_argument("--preset", default="cpu-quick")
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--out", type=Path, default=REPO / "bench-output" / "train_pair")
    a = ap.parse_args()
    if not (a.data / "pairs.json").exists():
        print(f"train_pair: test media not found at {a.data} (pass --data)", file=sys.stderr)
        return 2
    pair = next(p for p in json.loads((a.data / "pairs.json").read_text())["pairs"] if p["name"] == a.pair)
    mcfg, tcfg = preset(a.preset)
    sides = {}
    for side, rel in (("src", pair["src"][0]), ("dst", pair["dst"])):
        sides[side] = a.out / f"faceset_{side}"
        s = extract(a.data / rel, sides[side], ExtractConfig(face_type="whole_face", size=256))
        print(f"{side}: {rel} -> {sides[side]} ({s.faces_written} new faces)")
    model_dir = a.out / f"model_{a.preset}"
    trainer = Trainer(sides["src"], sides["dst"], model_dir, mcfg, tcfg)
    start = trainer.iteration
    res = trainer.run(minutes=a.minutes)
    h = res.history
    print(
        f"\n{a.preset} ({mcfg.archi} @ {mcfg.resolution}, batch {tcfg.batch}): {res.iteration - start} iterations "
        f"in {res.seconds / 60:.1f} min ({1000 * res.seconds / max(1, res.iteration - start):.0f} ms/iter), "
        f"{len(trainer.src_bank)} src / {len(trainer.dst_bank)} dst faces"
    )
    ok = True
    for key in ("src", "dst"):
        first, last = history_mean(h, key, 0, 100), history_mean(h, key, -100)
        ok &= last <= 0.5 * first
        print(f"  {key} loss: first-100 mean {first:.4f} -> last-100 mean {last:.4f} (x{last / first:.2f})")
    found, n, strip = swapped_faces_detected(trainer)
    cv2.imwrite(str(model_dir / "swap_strip.png"), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
    print(f"  swapped dst->src faces detected as faces: {found}/{n}")
    print(
        f"  curves: {model_dir / 'losses.png'}; preview: {model_dir / 'preview.png'}; swaps: {model_dir / 'swap_strip.png'}"
    )
    print(
        f"{'PASS' if ok and found >= 0.9 * n else 'FAIL'}  both losses at most half their first-100 mean; "
        f"swapped faces detected"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
