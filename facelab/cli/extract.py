"""``facelab extract``: video / image folder / image -> aligned faceset."""

from __future__ import annotations

import argparse

from facelab.cli.common import Subparsers, config_from
from facelab.config import ExtractConfig
from facelab.runs.progress import ProgressBar


def add_extract(sub: Subparsers) -> None:
    d = ExtractConfig()
    p = sub.add_parser("extract", help="video / image folder / image -> aligned faceset")
    p.add_argument("input", help="video file, folder of images, or one image")
    p.add_argument("-o", "--output", required=True, help="faceset folder to write")
    p.add_argument("--face-type", default=d.face_type, help="h | mf | f | wf | head (default: %(default)s)")
    p.add_argument("--size", type=int, default=d.size, help="aligned face side in px (default: %(default)s)")
    p.add_argument("--detector", default=d.detector, help="mediapipe | dlib-hog | dlib-mmod (default: %(default)s)")
    p.add_argument(
        "--landmarks", default=d.landmarker, dest="landmarker", help="auto | dlib68 | facemesh (default: %(default)s)"
    )
    p.add_argument("--no-refine", action="store_false", dest="refine", help="skip the second landmark pass")
    p.add_argument("--no-smooth", action="store_false", dest="smooth", help="no temporal landmark smoothing (video)")
    p.add_argument("--format", default=d.image_format, dest="image_format", choices=["jpg", "png"])
    p.add_argument("--quality", type=int, default=d.jpeg_quality, dest="jpeg_quality", help="JPEG quality")
    p.add_argument("--interpolation", default=d.interpolation, choices=["cubic", "lanczos"])
    p.add_argument("--every", type=int, default=d.every, help="use one frame in N")
    p.add_argument(
        "--max-faces", type=int, default=d.max_faces, help="at most N faces per frame, largest first (0 = all)"
    )
    p.add_argument("--only-like", default=None, metavar="PHOTO", help="keep only faces of the person in PHOTO")
    p.add_argument("--only-like-threshold", type=float, default=d.only_like_threshold)
    p.add_argument("--debug", default=None, dest="debug_dir", metavar="DIR", help="write annotated frames to DIR")
    p.add_argument("--force", action="store_true", help="redo an extraction that already completed")
    p.add_argument("--jobs", type=int, default=d.jobs, help="parallel face finders (default: %(default)s)")
    p.set_defaults(func=cmd_extract)


def cmd_extract(a: argparse.Namespace) -> int:
    from facelab.extract.pipeline import extract

    with ProgressBar("extract", "frame") as bar:
        s = extract(a.input, a.output, config_from(a, ExtractConfig), progress=bar.update, force=a.force)
    print(s.summary())
    return 0
