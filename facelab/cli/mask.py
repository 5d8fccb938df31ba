"""``facelab mask train|apply|remove``: a trainable face segmentation (XSeg-class) and the masks it stores in a
faceset."""

from __future__ import annotations

import argparse

from facelab.cli.common import Subparsers, add_config_options, config_from, given_options
from facelab.config import MaskConfig
from facelab.errors import FacelabError
from facelab.runs.progress import ProgressBar


def add_mask(sub: Subparsers) -> None:
    p = sub.add_parser("mask", help="face segmentation that keeps glasses, hands and hair: train, apply, remove")
    ms = p.add_subparsers(dest="mask_cmd", required=True, metavar="{train,apply,remove}")
    t = ms.add_parser("train", help="train a mask model on polygon-labelled faces (resumes if --out exists)")
    t.add_argument("--faceset", action="append", required=True, help="faceset to learn from (repeatable)")
    t.add_argument("--out", required=True, help="mask model folder; an existing one is resumed")
    t.add_argument("--minutes", type=float, help="train for this many minutes")
    t.add_argument("--iters", type=int, help="train until this many iterations in total")
    t.add_argument("--init", help="start from this mask model's weights (fine-tune a generic model)")
    t.add_argument("--generic", action="store_true", help="no labels needed: landmark hull minus synthetic occluders")
    add_config_options(t, MaskConfig, "mask model")
    t.set_defaults(func=_cmd_train)
    a = ms.add_parser("apply", help="store each face's predicted mask in its metadata (xseg_mask)")
    a.add_argument("model", help="mask model folder from 'facelab mask train'")
    a.add_argument("faceset", help="faceset whose faces get the mask")
    a.add_argument("--apply-batch", type=int, default=MaskConfig().apply_batch, help="faces per forward pass")
    a.add_argument("--threshold", type=float, default=MaskConfig().threshold, help="binarise the mask here")
    a.set_defaults(func=_cmd_apply)
    r = ms.add_parser("remove", help="drop the stored masks of a faceset")
    r.add_argument("faceset")
    r.set_defaults(func=_cmd_remove)


def _cmd_train(a: argparse.Namespace) -> int:
    from facelab.mask.stage import train_mask

    if a.minutes is None and a.iters is None:
        raise FacelabError("give --minutes M or --iters N")
    opts = given_options(a, MaskConfig)
    with ProgressBar("mask train", "it") as bar:
        res = train_mask(
            a.faceset, a.out, MaskConfig(**opts), set(opts), a.iters, a.minutes, a.init, a.generic, bar.update, print
        )
    print(res.summary())
    return 0


def _cmd_apply(a: argparse.Namespace) -> int:
    from facelab.mask.stage import apply_mask

    with ProgressBar("mask apply", "face") as bar:
        res = apply_mask(a.model, a.faceset, config_from(a, MaskConfig), progress=bar.update)
    print(res.summary())
    return 0


def _cmd_remove(a: argparse.Namespace) -> int:
    from facelab.mask.stage import remove_masks

    print(remove_masks(a.faceset).summary())
    return 0
