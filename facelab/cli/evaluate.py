"""``facelab evaluate`` (measure a swap, or compare two reports) and ``facelab fid`` (two image folders)."""

from __future__ import annotations

import argparse

from facelab.cli.common import Subparsers
from facelab.config import FidConfig
from facelab.errors import FacelabError


def add_fid(sub: Subparsers) -> None:
    p = sub.add_parser("fid", help="FID and KID between two folders of images")
    p.add_argument("dir_a")
    p.add_argument("dir_b")
    p.add_argument(
        "--inception-weights", help="pytorch-fid .pth or TorchScript file (default: fid-helper's default_1.pt)"
    )
    p.add_argument("--resize", default=FidConfig().resize, choices=["bilinear-tf", "clean"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_fid)


def cmd_fid(a: argparse.Namespace) -> int:
    from facelab.evaluate.fid import measure_fid

    res = measure_fid(a.dir_a, a.dir_b, FidConfig(resize=a.resize, inception_weights=a.inception_weights))
    print(res.to_json() if a.json else res.summary())
    return 0


def add_evaluate(sub: Subparsers) -> None:
    p = sub.add_parser("evaluate", help="measure a swap: FID/KID, identity, pose, expression, stability (or 'compare')")
    p.add_argument(
        "args",
        nargs="*",
        metavar="compare REPORT_A REPORT_B",
        help="'compare A B' prints two reports side by side; otherwise use the options below",
    )
    p.add_argument("--src", help="source faceset")
    p.add_argument("--dst", help="destination video")
    p.add_argument("--swapped", help="merged video")
    p.add_argument("-o", "--output", help="report folder")
    p.add_argument("--inception-weights", help="pytorch-fid .pth or TorchScript file (default: fid-helper's)")
    p.add_argument("--no-fid", action="store_true", help="skip FID/KID (the Inception network is slow on CPU)")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(a: argparse.Namespace) -> int:
    from facelab.evaluate.report import compare, evaluate, format_summary

    if a.args[:1] == ["compare"]:
        if len(a.args) != 3:
            raise FacelabError("usage: facelab evaluate compare REPORT_A REPORT_B")
        print(compare(a.args[1], a.args[2]))
        return 0
    missing = [n for n in ("src", "dst", "swapped", "output") if not getattr(a, n)]
    if missing or a.args:
        raise FacelabError(
            "usage: facelab evaluate --src FACESET --dst VIDEO --swapped VIDEO -o DIR, or facelab evaluate compare A B"
            + (f" (missing: {', '.join('--' + m for m in missing)})" if missing else "")
        )
    report = evaluate(a.src, a.dst, a.swapped, a.output, inception_weights=a.inception_weights, with_fid=not a.no_fid)
    print(format_summary(report))
    print(f"report: {a.output}/report.html")
    return 0
