"""``facelab detect``: faces, 68 landmarks and head pose of images, one JSON line each."""

from __future__ import annotations

import argparse
import sys

from facelab.cli.common import Subparsers
from facelab.config import ExtractConfig


def add_detect(sub: Subparsers) -> None:
    d = ExtractConfig()
    p = sub.add_parser("detect", help="faces, 68 landmarks and head pose of images, as JSON lines")
    p.add_argument("images", nargs="+")
    p.add_argument("--json", action="store_true", help="one JSON object per image (the only output format)")
    p.add_argument("--detector", default=d.detector)
    p.add_argument("--landmarks", default=d.landmarker, dest="landmarker")
    p.add_argument("--no-refine", action="store_false", dest="refine")
    p.set_defaults(func=cmd_detect)


def cmd_detect(a: argparse.Namespace) -> int:
    from facelab.extract.detect_images import detect_images

    status = 0
    for r in detect_images(a.images, a.detector, a.landmarker, a.refine):
        if r.error is not None:  # an unreadable image is reported and skipped; the exit status says so
            print(f"facelab: error: {r.error}", file=sys.stderr)
            status = 1
        else:
            print(r.to_json(), flush=True)
    return status
