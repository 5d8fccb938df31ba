"""Training throughput: ms/iter and samples/s of the model step (fp32 and bf16) for DFL's reference
configurations, and loader-only samples/s in the same run. Runs unchanged on CUDA when a GPU is present.

Usage: .venv/bin/python benchmarks/train_speed.py [--iters 10] [--faceset DIR]
Without --faceset, a faceset is extracted from the package-shipped sample photos (rotated variants).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import torch

from facelab.config import ExtractConfig, ModelConfig, TrainConfig
from facelab.demo import astronaut_image, hopper_image
from facelab.extract.pipeline import extract
from facelab.train.loop import Trainer

CONFIGS = [("df-ud", 64, 16), ("liae-ud", 128, 8), ("df-ud", 256, 4)]


def sample_facesets(root: Path) -> tuple[Path, Path]:
    out = []
    for name, img in (("src", hopper_image()), ("dst", astronaut_image())):
        d = root / f"{name}_in"
        d.mkdir()
        h, w = img.shape[:2]
        for i in range(8):
            m = cv2.getRotationMatrix2D((w / 2, h / 2), -8 + 2 * i, 1.0)
            rot = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
            cv2.imwrite(str(d / f"{i}.png"), cv2.cvtColor(rot, cv2.COLOR_RGB2BGR))
        extract(d, root / name, ExtractConfig(size=256))
        out.append(root / name)
    return out[0], out[1]


def measure(trainer: Trainer, iters: int) -> tuple[float, float]:
    """(ms per model step, loader samples/s), each over ``iters`` after 2 warm-up iterations."""
    loader = iter(trainer.loader())
    batches = [next(loader) for _ in range(iters + 2)]
    t = time.perf_counter()
    for _ in range(iters):
        next(loader)
    load_sps = iters * trainer.tcfg.batch / (time.perf_counter() - t)
    for b in batches[:2]:
        trainer.step(b)
    sync = torch.cuda.synchronize if trainer.dist.device.type == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    for b in batches[2:]:
        trainer.step(b)
    sync()
    return 1000 * (time.perf_counter() - t) / iters, load_sps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--faceset", type=Path, nargs=2, metavar=("SRC", "DST"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = a.faceset or sample_facesets(Path(tmp))
        dev = "cuda " + torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu x{torch.get_num_threads()}"
        print(f"device: {dev}; torch {torch.__version__}")
        print(f"{'model':16} {'batch':>5} {'precision':>9} {'ms/iter':>9} {'samples/s':>10} {'loader samples/s':>17}")
        for archi, res, batch in CONFIGS:
            for precision in ("fp32", "bf16"):
                mcfg = replace(ModelConfig(), archi=archi, resolution=res)
                tcfg = replace(TrainConfig(), batch=batch, precision=precision, workers=2, preview_every=0)
                trainer = Trainer(src, dst, Path(tmp) / f"m_{archi}_{res}_{precision}", mcfg, tcfg)
                ms, load = measure(trainer, a.iters)
                print(
                    f"{archi + ' @' + str(res):16} {batch:5d} {precision:>9} {ms:9.0f} {1000 * batch / ms:10.1f} "
                    f"{load:17.1f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
