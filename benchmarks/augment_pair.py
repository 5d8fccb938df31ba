"""Issue 6, acceptance 2 and 3: the seed's experiment at CPU scale on a real pair.

1. train a StyleGAN2-ADA generator on the src faceset (default: 64 px, the narrow ``cpu`` config, 30 minutes) and
   report in what fraction of ``--probe`` generated images the extraction stage finds a face (and how many of
   those pass the identity filter),
2. optionally train it ``--gan-extra-minutes`` longer (the 30-minute generator is kept as ``gan_30min``), then
   sample it into a copy of the src faceset, identity-filtered and filling the pose/expression bins the src lacks
   relative to the dst,
3. train two swap models with the same preset, iterations and seed: on the real src faceset and on the augmented
   one, merge both into the dst video, evaluate both against the real src faceset, and print
   ``facelab evaluate compare`` of the two reports,
4. write the coverage plot (``facelab faceset coverage``) of the augmented faceset against the dst.

Every stage is resumable and skipped when its output exists (delete a stage's folder or marker to redo it). Uses
the CLI, so the figures are what a user gets.

Usage: .venv/bin/python benchmarks/augment_pair.py [--pair p2_to_p1] [--gan-minutes 30] [--gan-extra-minutes 40]
       [--iters 600] [-n 200]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FACELAB = [sys.executable, "-m", "facelab.cli"]


def run(stage: str, args: list[str], marker: Path | None = None) -> str:
    """Run one CLI stage (skipped when ``marker`` exists); its stdout is printed and returned."""
    if marker is not None and marker.exists():
        print(f"[{stage}] done earlier ({marker})")
        return marker.read_text() if marker.is_file() else ""
    print(f"[{stage}] facelab {' '.join(args)}", flush=True)
    t0 = time.monotonic()
    r = subprocess.run([*FACELAB, *args], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout[-3000:], r.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"[{stage}] failed (exit {r.returncode})")
    print(r.stdout.rstrip())
    print(f"[{stage}] {time.monotonic() - t0:.0f} s", flush=True)
    if marker is not None and marker.suffix == ".txt":
        marker.write_text(r.stdout)
    return r.stdout


def copy_faces(src: Path, dest: Path) -> Path:
    """A copy of a faceset's face files (once; the copy is renamed into place when complete)."""
    if not dest.exists():
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for f in src.iterdir():
            if f.suffix.lower() in (".jpg", ".jpeg", ".png"):
                shutil.copy2(f, tmp / f.name)
        tmp.rename(dest)
    return dest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--pair", default="p2_to_p1")
    ap.add_argument("--facesets", type=Path, default=REPO / "bench-output" / "train_pair",
                    help="folder with faceset_src / faceset_dst (made by benchmarks/train_pair.py)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=REPO / "bench-output" / "augment_pair")
    ap.add_argument("--gan-minutes", type=float, default=30.0)
    ap.add_argument("--gan-res", type=int, default=64)
    ap.add_argument("--gan-cfg", default="cpu")
    ap.add_argument("--gan-batch", type=int, default=8, help="more, smaller steps in a short CPU run")
    ap.add_argument(
        "--gan-file",
        type=Path,
        help="use this generator (e.g. trained on a lent GPU and exported with "
        "'facelab augment export') instead of training one here",
    )
    ap.add_argument("--gan-extra-minutes", type=float, default=0.0, help="train the generator longer before sampling")
    ap.add_argument("--probe", type=int, default=256, help="generated images for the face-detection fraction")
    ap.add_argument("-n", type=int, default=200, help="synthetic faces to add")
    ap.add_argument("--preset", default="cpu-quick")
    ap.add_argument("--iters", type=int, default=600, help="swap-model iterations (both runs)")
    ap.add_argument("--candidates", type=int, default=4, help="sampling: examine up to n x this many images")
    ap.add_argument("--no-fid", action="store_true", help="evaluate without FID/KID (Inception is slow on a CPU)")
    a = ap.parse_args()
    if not (a.data / "pairs.json").exists():
        print(f"augment_pair: test media not found at {a.data} (pass --data)", file=sys.stderr)
        return 2
    pair = next(p for p in json.loads((a.data / "pairs.json").read_text())["pairs"] if p["name"] == a.pair)
    dst_video = a.data / pair["dst"]
    src_fs, dst_fs = a.facesets / "faceset_src", a.facesets / "faceset_dst"
    if not src_fs.is_dir() or not dst_fs.is_dir():
        for side, rel, fs in (("src", pair["src"][0], src_fs), ("dst", pair["dst"], dst_fs)):
            run(f"extract {side}", ["extract", str(a.data / rel), "-o", str(fs), "--size", "256"])
    out = a.out
    out.mkdir(parents=True, exist_ok=True)

    # 1. the generator
    if a.gan_file is not None:
        gan = snapshot = a.gan_file
        label = f"generator {a.gan_file.name}"
    else:
        gan = out / "gan"
        run(
            "augment train",
            ["augment", "train", "--faceset", str(src_fs), "--out", str(gan), "--resolution", str(a.gan_res),
             "--cfg", a.gan_cfg, "--batch", str(a.gan_batch), "--minutes", str(a.gan_minutes), "--preview-every",
             "100"],
            out / "gan_done.txt",
        )  # fmt: skip
        snapshot = out / f"gan_{a.gan_minutes:g}min"
        if not snapshot.exists():
            shutil.copytree(gan, snapshot)
        label = f"the {a.gan_minutes:g}-minute generator"
    probe = run(
        "probe",
        ["augment", "sample", "--gan", str(snapshot), "--faceset", str(copy_faces(src_fs, out / "faceset_probe")),
         "-n", str(a.probe), "--candidates", "1"],
        out / "probe.txt",
    )  # fmt: skip
    if a.gan_extra_minutes > 0 and a.gan_file is None:
        run("augment train (longer)",
            ["augment", "train", "--faceset", str(src_fs), "--out", str(gan), "--minutes", str(a.gan_extra_minutes)],
            out / "gan_extra_done.txt")  # fmt: skip
        run("probe (longer)",
            ["augment", "sample", "--gan", str(gan), "--faceset", str(copy_faces(src_fs, out / "faceset_probe2")),
             "-n", str(a.probe), "--candidates", "1"],
            out / "probe2.txt")  # fmt: skip

    # 2. synthetic faces into a copy of the src faceset
    aug_fs = copy_faces(src_fs, out / "faceset_src_aug")
    sample_out = run(
        "augment sample",
        ["augment", "sample", "--gan", str(gan), "--faceset", str(aug_fs), "-n", str(a.n), "--dst", str(dst_fs),
         "--fill-poses", "--fill-expressions", "--candidates", str(a.candidates)],
        out / "sample_done.txt",
    )  # fmt: skip
    run("coverage", ["faceset", "coverage", str(aug_fs), str(dst_fs), "--png", str(out / "coverage.png")])

    # 3. the two swap models, merged and evaluated
    reports = {}
    for name, fs in (("real", src_fs), ("aug", aug_fs)):
        model = out / f"model_{name}"
        run(f"train {name}",
            ["train", "--src", str(fs), "--dst", str(dst_fs), "--model", str(model), "--preset", a.preset,
             "--iters", str(a.iters), "--seed", "0"])  # fmt: skip
        video = out / f"swapped_{name}.mp4"
        run(f"merge {name}", ["merge", str(dst_video), "--model", str(model), "-o", str(video),
                              "--faceset", str(dst_fs)], video)  # fmt: skip
        reports[name] = out / f"report_{name}"
        run(f"evaluate {name}", ["evaluate", "--src", str(src_fs), "--dst", str(dst_video), "--swapped", str(video),
                                 "-o", str(reports[name]), *(["--no-fid"] if a.no_fid else [])],
            reports[name] / "report.json")  # fmt: skip
    print(f"\n=== {label}: {a.probe} images probed ===")
    print(probe.strip())
    print("\n=== sampling into the src faceset ===")
    print(sample_out.strip())
    print("\n=== without (A) vs with (B) synthetic faces, same preset / iterations / seed ===")
    run("compare", ["evaluate", "compare", str(reports["real"]), str(reports["aug"])])
    print(f"coverage plot: {out / 'coverage.png'}; generator: {gan}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
