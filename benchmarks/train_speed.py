"""Training throughput: ms/iter and samples/s of the model step (fp32 and bf16) for DFL's reference
configurations, and loader-only samples/s in the same run. Runs unchanged on CUDA when a GPU is present.

Usage: .venv/bin/python benchmarks/train_speed.py [--iters 10] [--faceset SRC DST] [--configs liae-ud@256x8,...]
                                                  [--precisions fp32,bf16] [--flops]
Without --faceset, a faceset is extracted from the package-shipped sample photos (rotated variants).
``--flops`` counts one step's floating-point operations (torch's FlopCounterMode: convolutions and matmuls,
forward and backward) and prints achieved TFLOP/s and, on a GPU whose bf16 dense peak is known, MFU.
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
# dense bf16 tensor-core peaks (TFLOP/s) from the vendors' datasheets, matched on the device name
PEAK_BF16 = {"H200": 989.4, "H100 80GB HBM3": 989.4, "H100 PCIe": 756.0, "H100": 989.4, "A100": 312.0}


def parse_configs(text: str) -> list[tuple[str, int, int]]:
    """``"liae-ud@256x8,df-ud@128x16"`` -> [(archi, resolution, batch), ...]."""
    out = []
    for item in filter(None, text.split(",")):
        archi, _, rest = item.partition("@")
        res, _, batch = rest.partition("x")
        out.append((archi, int(res), int(batch)))
    return out


def peak_tflops(device_name: str) -> float | None:
    return next((v for k, v in PEAK_BF16.items() if k in device_name), None)


def step_flops(trainer: Trainer, batch: dict) -> float:
    """Floating-point operations of one training step (forward, backward; optimizer excluded)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        trainer.step(batch)
    return float(counter.get_total_flops())


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


def measure(trainer: Trainer, iters: int) -> tuple[float, float, dict]:
    """(ms per model step, loader samples/s, a batch), each over ``iters`` after 2 warm-up iterations."""
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
    return 1000 * (time.perf_counter() - t) / iters, load_sps, batches[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--faceset", type=Path, nargs=2, metavar=("SRC", "DST"))
    ap.add_argument("--configs", type=parse_configs, default=CONFIGS, help="archi@RESxBATCH, comma-separated")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--flops", action="store_true", help="also print TFLOP/s and MFU (one counted step each)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = a.faceset or sample_facesets(Path(tmp))
        name = torch.cuda.get_device_name() if torch.cuda.is_available() else ""
        dev = f"cuda {name}" if name else f"cpu x{torch.get_num_threads()}"
        peak = peak_tflops(name) if name else None
        print(f"device: {dev}; torch {torch.__version__}; bf16 dense peak {peak or 'unknown'} TFLOP/s")
        extra = f" {'GFLOP/step':>10} {'TFLOP/s':>8} {'MFU':>6}" if a.flops else ""
        print(
            f"{'model':16} {'batch':>5} {'precision':>9} {'ms/iter':>9} {'samples/s':>10} {'loader samples/s':>17}{extra}"
        )
        for archi, res, batch in a.configs:
            for precision in a.precisions.split(","):
                mcfg = replace(ModelConfig(), archi=archi, resolution=res)
                tcfg = replace(TrainConfig(), batch=batch, precision=precision, workers=2, preview_every=0)
                trainer = Trainer(src, dst, Path(tmp) / f"m_{archi}_{res}_{precision}", mcfg, tcfg)
                ms, load, b = measure(trainer, a.iters)
                line = f"{archi + ' @' + str(res):16} {batch:5d} {precision:>9} {ms:9.0f} {1000 * batch / ms:10.1f} {load:17.1f}"
                if a.flops:
                    flops = step_flops(trainer, b)
                    tflops = flops / (ms / 1000) / 1e12
                    mfu = f"{100 * tflops / peak:5.1f}%" if peak and precision == "bf16" else "   n/a"
                    line += f" {flops / 1e9:10.1f} {tflops:8.2f} {mfu:>6}"
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
