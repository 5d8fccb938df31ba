"""``facelab faceset info|coverage|sort|dedupe|filter|import``: inspect, compare and tidy facesets."""

from __future__ import annotations

import argparse
import sys

from facelab.cli.common import Subparsers
from facelab.config import CoverageConfig, DedupeConfig, FilterConfig


def add_faceset(sub: Subparsers) -> None:
    p = sub.add_parser("faceset", help="inspect, compare, sort, dedupe, filter and import facesets")
    fs = p.add_subparsers(dest="faceset_cmd", required=True, metavar="{info,coverage,sort,dedupe,filter,import}")
    for add in (_add_info, _add_coverage, _add_sort, _add_dedupe, _add_filter, _add_import):
        add(fs)


def _add_info(fs: Subparsers) -> None:
    p = fs.add_parser("info", help="counts and pose histogram of a faceset (facelab or DFL folder)")
    p.add_argument("folder")
    p.add_argument("--plot", metavar="PNG", help="also write the yaw/pitch histogram as a PNG")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_info)


def _cmd_info(a: argparse.Namespace) -> int:
    from facelab.faceset.tools import describe_faceset

    print(describe_faceset(a.folder, plot=a.plot).summary(as_json=a.json))
    return 0


def _add_coverage(fs: Subparsers) -> None:
    d = CoverageConfig()
    p = fs.add_parser(
        "coverage",
        help="pose and expression bins where DST has faces and SRC has few (and synthetic faces per bin)",
    )
    p.add_argument("src", help="source faceset (the face to put in; synthetic faces in it are counted apart)")
    p.add_argument("dst", help="destination faceset (the faces to replace)")
    p.add_argument(
        "--png",
        metavar="PATH",
        help="heatmap PNG to write (default: beside SRC as SRC.coverage.png; inside the faceset folder a PNG "
        "would be taken for a face)",
    )
    p.add_argument("--no-plot", action="store_true", help="print only, write no PNG")
    p.add_argument(
        "--add",
        action="append",
        default=[],
        metavar="DIR",
        help="more src faces counted with SRC, e.g. the renders of 'augment render' (repeatable)",
    )
    p.add_argument(
        "--min-dst",
        type=int,
        default=d.min_dst,
        help="a thin bin holds at least this many dst faces (default: %(default)s)",
    )
    p.add_argument(
        "--fraction",
        type=float,
        default=d.fraction,
        help="a thin bin's src share is below this fraction of its dst share (default: %(default)s)",
    )
    p.add_argument("--json", action="store_true", help="print the counts and thin bins as JSON")
    p.set_defaults(func=_cmd_coverage)


def _cmd_coverage(a: argparse.Namespace) -> int:
    from facelab.faceset.tools import compare_coverage

    cfg = CoverageConfig(a.min_dst, a.fraction)
    r = compare_coverage(a.src, a.dst, cfg, png=a.png, plot=not a.no_plot, add=a.add)
    if a.json:  # stdout stays pure JSON; the note about the plot goes to stderr
        print(r.to_json())
        if r.png:
            print(r.plot_note(), file=sys.stderr)
    else:
        print(r.summary())
    return 0


def _add_sort(fs: Subparsers) -> None:
    p = fs.add_parser("sort", help="order faces by blur, yaw, pitch, histogram, size or identity")
    p.add_argument("folder")
    p.add_argument("--by", required=True, choices=["blur", "yaw", "pitch", "hist", "size", "identity"])
    p.add_argument("--photo", help="reference photo for --by identity")
    p.add_argument("--order-file", metavar="TXT", help="write the order to TXT instead of renaming files")
    p.set_defaults(func=_cmd_sort)


def _cmd_sort(a: argparse.Namespace) -> int:
    from facelab.faceset.tools import reorder_faceset

    print(reorder_faceset(a.folder, a.by, photo=a.photo, order_file=a.order_file).summary())
    return 0


def _add_dedupe(fs: Subparsers) -> None:
    p = fs.add_parser("dedupe", help="find near-duplicate faces (moved to --trash, else only listed)")
    p.add_argument("folder")
    p.add_argument(
        "--threshold",
        type=float,
        default=DedupeConfig().threshold,
        help="mean absolute difference at 64 px, 0-1 (default: %(default)s)",
    )
    p.add_argument("--trash", metavar="DIR", help="move duplicates here (nothing is ever deleted)")
    p.set_defaults(func=_cmd_dedupe)


def _cmd_dedupe(a: argparse.Namespace) -> int:
    from facelab.faceset.tools import dedupe_faceset

    print(dedupe_faceset(a.folder, DedupeConfig(a.threshold), trash=a.trash).summary())
    return 0


def _add_filter(fs: Subparsers) -> None:
    p = fs.add_parser("filter", help="select faces by pose range or sharpness (rejects moved to --trash, else listed)")
    p.add_argument("folder")
    p.add_argument("--yaw", nargs=2, type=float, metavar=("MIN", "MAX"), help="keep yaw in [MIN, MAX] degrees")
    p.add_argument("--pitch", nargs=2, type=float, metavar=("MIN", "MAX"), help="keep pitch in [MIN, MAX] degrees")
    p.add_argument("--min-blur", type=float, help="keep faces with sharpness score >= this")
    p.add_argument("--trash", metavar="DIR", help="move rejected faces here (nothing is ever deleted)")
    p.set_defaults(func=_cmd_filter)


def _cmd_filter(a: argparse.Namespace) -> int:
    from facelab.faceset.tools import filter_to_trash

    cfg = FilterConfig(_range(a.yaw), _range(a.pitch), a.min_blur)
    print(filter_to_trash(a.folder, cfg, trash=a.trash).summary())
    return 0


def _range(values: list[float] | None) -> tuple[float, float] | None:
    return (values[0], values[1]) if values else None


def _add_import(fs: Subparsers) -> None:
    p = fs.add_parser("import", help="convert a DeepFaceLab aligned folder (metadata read without unpickling code)")
    p.add_argument("folder", help="DFL aligned folder")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=_cmd_import)


def _cmd_import(a: argparse.Namespace) -> int:
    from facelab.faceset.dfl import import_dfl

    print(import_dfl(a.folder, a.output).summary())
    return 0
