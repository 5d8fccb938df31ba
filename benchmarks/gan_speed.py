"""StyleGAN2-ADA training throughput: kimg/hour at 64 and 128 px, fp32 and bf16, for the ``small`` config (the
small-data preset: DiffAugment, no path length, narrow nets), the ``cpu`` config and the ``auto`` config (the
paper's), with the lazy regularisation amortised exactly as training does it; ``--before REV`` also runs revision
REV's own copy of this script on the same settings and prints before / after side by side.

One iteration's cost depends on which phases run: a plain step (G main, D main, EMA, ADA), +path length every
4th, +R1 every 16th. Each kind is timed (median of ``--repeat`` after a warm-up) and combined:
    s/iter = plain + (with_pl - plain) / 4 + (with_pl_r1 - with_pl) / 16.
Runs unchanged on CUDA when a GPU is present (V100/A100 anchors in ../shared/reference/stylegan2-ada-notes.md §8);
the step is asynchronous there, so each timed step ends with a device synchronisation.

Usage: .venv/bin/python benchmarks/gan_speed.py [--repeat 3] [--res 64 128] [--cfg small cpu auto]
       [--precision fp32 bf16] [--batch N] [--faceset DIR] [--before HEAD]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

from facelab.augment.trainer import GanTrainer
from facelab.config import GanConfig
from facelab.demo import hopper_image
from facelab.faceset.meta import FaceMeta
from facelab.faceset.store import write_face


def sample_faceset(root: Path, n: int = 16) -> Path:
    """Jittered crops of a package-shipped photo: the GAN's speed does not depend on what the faces show."""
    d = root / "faces"
    d.mkdir()
    face = cv2.resize(hopper_image()[40:340, 90:390], (256, 256), interpolation=cv2.INTER_AREA)
    lmk = np.zeros((68, 2))
    meta = FaceMeta("whole_face", 256, lmk, lmk, np.eye(2, 3), np.eye(2, 3), "hopper", (256, 256), (0, 0, 256, 256))
    for i in range(n):
        m = cv2.getRotationMatrix2D((128, 128), -8 + i, 1.0)
        write_face(d / f"{i}.jpg", cv2.warpAffine(face, m, (256, 256), borderMode=cv2.BORDER_REFLECT), meta)
    return d


def time_step(t: GanTrainer, batch: torch.Tensor, iteration: int, repeat: int) -> float:
    out = []
    for _ in range(repeat):
        t.iteration = iteration
        if t.dist.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        t.step(batch)
        if t.dist.device.type == "cuda":
            torch.cuda.synchronize()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def measure(faceset: Path, work: Path, cfg: GanConfig, repeat: int) -> dict[str, float]:
    t = GanTrainer(faceset, work, cfg)
    batch = next(iter(t.loader()))
    time_step(t, batch, 1, 1)  # warm-up (allocator, oneDNN kernels)
    plain = time_step(t, batch, 1, repeat)
    with_pl = time_step(t, batch, t.cfg.pl_interval, repeat)
    with_all = time_step(t, batch, t.cfg.pl_interval * t.cfg.r1_interval, repeat)
    per_iter = plain + (with_pl - plain) / t.cfg.pl_interval + (with_all - with_pl) / t.cfg.r1_interval
    return {
        "batch": t.cfg.batch,
        "plain_s": plain,
        "pl_s": with_pl,
        "pl_r1_s": with_all,
        "s_per_iter": per_iter,
        "s_per_kimg": per_iter * 1000 / t.cfg.batch,
        "kimg_per_hour": 3600 * t.cfg.batch / per_iter / 1000,
        "G_params": sum(p.numel() for p in t.G.parameters()),
    }


LINE = re.compile(r"^(\S+)\s+(\d+) px (\S+)\s+batch\s+(\d+):.* ([\d.]+) kimg/h")


def before(rev: str, a: argparse.Namespace) -> dict[tuple[str, int, str], float]:
    """kimg/h per (cfg, px, precision) from revision ``rev``'s own gan_speed.py (its code, extracted with ``git
    archive`` into a temporary folder; the working tree is not touched). Configs it does not know are skipped."""
    repo = Path(__file__).resolve().parents[1]
    tar = subprocess.run(["git", "-C", str(repo), "archive", rev], capture_output=True, check=True).stdout
    out: dict[tuple[str, int, str], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=io.BytesIO(tar)) as t:
            t.extractall(tmp, filter="data")
        for cfg_name in a.cfg:
            script = str(Path(tmp) / "benchmarks" / "gan_speed.py")
            cmd = [sys.executable, script, "--repeat", str(a.repeat), "--res", *map(str, a.res), "--cfg", cfg_name,
                   "--precision", *a.precision, "--batch", str(a.batch)]  # fmt: skip
            if a.faceset:
                cmd += ["--faceset", str(a.faceset)]
            env = {**os.environ, "PYTHONPATH": tmp}
            r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, env=env)
            if r.returncode != 0:
                print(f"  before ({rev}): cfg {cfg_name} not measured ({r.stderr.strip().splitlines()[-1:]})")
                continue
            for line in r.stdout.splitlines():
                m = LINE.match(line)
                if m:
                    print(f"  before ({rev}): {line}", flush=True)
                    out[(m[1], int(m[2]), m[3])] = float(m[5])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--res", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--cfg", nargs="+", default=["small", "cpu", "auto"])
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--batch", type=int, default=0, help="override the config's batch (0 = the config's)")
    ap.add_argument("--faceset", type=Path, help="faceset to train on (default: generated from a sample photo)")
    ap.add_argument("--before", metavar="REV", help="also time git revision REV's code (e.g. HEAD) for comparison")
    a = ap.parse_args()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name() if dev == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    load = f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores" if dev == "cpu" else ""
    print(f"device: {name}; torch {torch.__version__}{load}")
    old = before(a.before, a) if a.before else {}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        faceset = a.faceset or sample_faceset(root)
        for cfg_name in a.cfg:
            for res in a.res:
                for prec in a.precision:
                    cfg = replace(GanConfig(), resolution=res, cfg=cfg_name, precision=prec, preview_every=0,
                                  autosave_minutes=1e9, batch=a.batch)  # fmt: skip
                    r = measure(faceset, root / f"{cfg_name}_{res}_{prec}", cfg, a.repeat)
                    rows.append((cfg_name, res, prec, r))
                    print(
                        f"{cfg_name:5} {res:4} px {prec:5} batch {r['batch']:3}: plain {r['plain_s']:.2f} s, "
                        f"+pl {r['pl_s']:.2f} s, +pl+R1 {r['pl_r1_s']:.2f} s -> {r['s_per_kimg']:.0f} s/kimg, "
                        f"{r['kimg_per_hour']:.2f} kimg/h (G {r['G_params'] / 1e6:.1f} M)",
                        flush=True,
                    )
    print("\nkimg/hour (higher is better); bf16 / fp32 ratio from the same run:")
    for cfg_name in a.cfg:
        for res in a.res:
            got = {p: r for c, rr, p, r in rows if c == cfg_name and rr == res}
            line = "  ".join(f"{p} {r['kimg_per_hour']:.2f}" for p, r in got.items())
            ratio = ""
            if "fp32" in got and "bf16" in got:
                ratio = f"  (bf16 x{got['bf16']['kimg_per_hour'] / got['fp32']['kimg_per_hour']:.2f})"
            print(f"  {cfg_name:5} {res:4} px: {line}{ratio}")
    if a.before:
        print(f"\nbefore ({a.before}) / after (this working tree), kimg/hour, same settings:")
        for c, res, prec, r in rows:
            was = old.get((c, res, prec))
            cmp = f"{was:8.2f} -> {r['kimg_per_hour']:8.2f}  x{r['kimg_per_hour'] / was:.2f}" if was else "(new)"
            print(f"  {c:5} {res:4} px {prec:5}: {cmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
