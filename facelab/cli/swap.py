"""``facelab swap``: the whole job - extract both sides, train, merge, report (resumable)."""

from __future__ import annotations

import argparse

from facelab.cli.common import Subparsers
from facelab.config import SwapConfig
from facelab.errors import FacelabError
from facelab.train.presets import PRESETS


def add_swap(sub: Subparsers) -> None:
    p = sub.add_parser("swap", help="the whole job: extract both sides, train, merge, report (resumable)")
    p.add_argument("src", nargs="+", help="source video(s) and/or image folders (the face to put in)")
    p.add_argument("dst", help="destination video, or a folder of frames (natural name order)")
    p.add_argument("--fps", type=float, help="frame rate of a frame-folder dst for video output (default 30)")
    p.add_argument("-o", "--output", required=True, help="output video")
    p.add_argument("--preset", default=SwapConfig().preset, choices=list(PRESETS))
    p.add_argument("--iters", type=int, help="train until this many iterations in total")
    p.add_argument("--minutes", type=float, help="train this many minutes more")
    p.add_argument(
        "--pretrained", metavar="MODEL", help="start a new model from one made by 'facelab train --pretrain'"
    )
    p.add_argument("--workdir", help="where facesets, model and report go (default: OUTPUT's name + .facelab)")
    p.set_defaults(func=cmd_swap)


def cmd_swap(a: argparse.Namespace) -> int:
    from facelab.swap import swap

    if a.iters is None and a.minutes is None:
        raise FacelabError("give --iters N or --minutes M")
    rep = swap(
        a.src,
        a.dst,
        a.output,
        a.preset,
        a.iters,
        a.minutes,
        a.workdir,
        log=lambda m: print(f"facelab: {m}"),
        fps=a.fps,
        pretrained=a.pretrained,
    )
    print(rep.summary())
    return 0
