"""``facelab merge`` (swapped video, or a contact sheet of merge options) and ``facelab inspect`` (its tag)."""

from __future__ import annotations

import argparse
import json

from facelab.cli.common import Subparsers, add_config_options, given_options
from facelab.config import MergeConfig
from facelab.runs.progress import ProgressBar


def add_merge(sub: Subparsers) -> None:
    p = sub.add_parser("merge", help="put a trained model's faces into the dst video (audio kept, tagged synthetic)")
    p.add_argument("dst", help="destination video, or a folder of frames (natural name order)")
    p.add_argument(
        "--model",
        required=True,
        help="model folder from 'facelab train'; with --runtime onnxruntime an .onnx or .dfm from 'facelab export'",
    )
    p.add_argument("--fps", type=float, help="frame rate of a frame-folder dst for video output (default 30)")
    p.add_argument("-o", "--output", required=True, help="output video (.mp4/.mkv/.mov) or a folder for PNG frames")
    p.add_argument("--faceset", help="the dst's faceset from 'facelab extract' (default: find faces on the fly)")
    p.add_argument("--mask-output", help="also write each frame's blend mask (video file or folder)")
    p.add_argument(
        "--preview",
        metavar="FRAMES",
        help="comma-separated frame numbers: write a contact sheet PNG to OUTPUT instead of a video",
    )
    p.add_argument(
        "--settings",
        metavar="FILE",
        help="per-frame merge settings (JSON from the studio's merge tuner; README 'Merge settings file')",
    )
    p.add_argument("--grid", nargs="*", default=[], metavar="OPT=V1,V2", help="options to vary in the contact sheet")
    add_config_options(p, MergeConfig, "merge")
    p.set_defaults(func=cmd_merge)


def cmd_merge(a: argparse.Namespace) -> int:
    given = given_options(a, MergeConfig)
    cfg = MergeConfig(**given)
    settings = None
    if a.settings:
        from facelab.errors import FacelabError
        from facelab.merge.settings import PER_FRAME, load_settings

        both = [n for n in PER_FRAME if n in given]
        if both:
            flag = "--" + both[0].replace("_", "-")
            raise FacelabError(f"{flag}: a per-frame setting; with --settings set it in {a.settings} instead")
        if a.preview:
            raise FacelabError(
                "--settings applies to a whole merge; --preview shows one set of options (leave one out)"
            )
        settings = load_settings(a.settings)
    if a.preview:
        if cfg.runtime != "torch":
            from facelab.errors import FacelabError

            raise FacelabError("--preview runs the model folder with torch; leave out --runtime")
        from facelab.merge.preview import contact_sheet, parse_grid

        frames = [int(v) for v in a.preview.split(",")]
        out = contact_sheet(a.dst, a.model, frames, parse_grid(a.grid), cfg, a.output, faceset=a.faceset)
        print(f"contact sheet written to {out}")
        return 0
    from facelab.merge.pipeline import merge

    with ProgressBar("merge", "frame") as bar:
        s = merge(
            a.dst,
            a.model,
            a.output,
            cfg,
            faceset=a.faceset,
            progress=bar.update,
            mask_output=a.mask_output,
            fps=a.fps,
            settings=settings,
        )
    print(s.summary())
    return 0


def add_inspect(sub: Subparsers) -> None:
    p = sub.add_parser("inspect", help="show the synthetic-media tag facelab wrote into a video")
    p.add_argument("video")
    p.set_defaults(func=cmd_inspect)


def cmd_inspect(a: argparse.Namespace) -> int:
    from facelab.io.video import read_tag

    tag = read_tag(a.video)
    if tag is None:
        print(f"{a.video}: no facelab synthetic-media tag")
        return 1
    print(json.dumps(tag, indent=1))
    return 0
