"""Merge frames/s with torch and with onnxruntime side by side, on one clip, in one run.

Each 128-px model (freshly initialised: speed does not depend on training) merges the clip four ways: torch with
the model folder at the default precision (bf16 where the CPU has it natively, else fp32) and at fp32, and
onnxruntime (CPU, fp32) with the model's ``facelab export`` ``.onnx`` and ``.dfm``. Faces come from the dst faceset,
as ``facelab swap`` merges, so the rows differ only in how the swap is predicted. The last column is the
predictor alone: faces/s of one batch-8 call, the part of the merge the runtime changes.

Usage: .venv/bin/python benchmarks/merge_runtime.py [--data ../shared/data] [--archi liae-ud df-ud]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from facelab.config import ExportConfig, ExtractConfig, MergeConfig, ModelConfig, TrainConfig
from facelab.export import export_model
from facelab.extract.pipeline import extract
from facelab.merge.pipeline import load_predictor
from facelab.merge.pipeline import merge as merge_video
from facelab.train.loop import Trainer

CLIP = "videos/person_p1_lp_d3.mp4"


def predictor_fps(model: Path, runtime: str, precision: str, batch: int = 8, reps: int = 5) -> float:
    """Faces/s of the predictor alone on a batch of random crops (best of ``reps`` after a warm-up)."""
    p, _ = load_predictor(model, runtime, precision)
    crops = np.random.default_rng(0).random((batch, p.res, p.res, 3), dtype=np.float32)
    p(crops)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        p(crops)
        best = min(best, time.perf_counter() - t)
    return batch / best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--archi", nargs="+", default=["liae-ud", "df-ud"], help="models at 128 px to measure")
    a = ap.parse_args()
    clip = a.data / CLIP
    if not clip.exists():
        print(f"merge_runtime: skipped, {clip} not found (pass --data; the set lives in ../shared/data)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fs = tmp / "dst_fs"
        extract(clip, fs, ExtractConfig(size=256))
        print(f"{clip.name}, 128-px models, faces from the dst faceset")
        print(
            f"{'model':14} {'runtime':13} {'model file':10} {'precision':9} {'merge fps':>9} {'predictor faces/s':>18}"
        )
        for archi in a.archi:
            model = tmp / f"model_{archi}"
            mcfg = replace(ModelConfig(), archi=archi, resolution=128)
            Trainer(fs, fs, model, mcfg, replace(TrainConfig(), pretrain=True, workers=0, preview_every=0)).run(1)
            for fmt in ("onnx", "dfm"):
                export_model(model, tmp / f"{archi}.{fmt}", ExportConfig(format=fmt))
            runs = [
                ("torch", model, "folder", "auto"),
                ("torch", model, "folder", "fp32"),
                ("onnxruntime", tmp / f"{archi}.onnx", ".onnx", "fp32"),
                ("onnxruntime", tmp / f"{archi}.dfm", ".dfm", "fp32"),
            ]
            for runtime, path, kind, precision in runs:
                cfg = MergeConfig(runtime=runtime, precision=precision)
                s = merge_video(clip, path, tmp / "out.mp4", cfg, faceset=fs)
                pf = predictor_fps(path, runtime, precision)
                shown = "bf16" if precision == "auto" and _bf16_native() else precision
                name = f"{archi} @128"
                print(f"{name:14} {runtime:13} {kind:10} {shown:9} {s.fps:9.1f} {pf:18.1f}", flush=True)
    return 0


def _bf16_native() -> bool:
    import torch

    from facelab.models.precision import autocast_dtype

    return autocast_dtype("auto", torch.device("cpu")) is not None


if __name__ == "__main__":
    sys.exit(main())
