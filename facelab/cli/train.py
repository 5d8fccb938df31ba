"""``facelab train``: train a swap model on a src and a dst faceset, or show its parameter counts."""

from __future__ import annotations

import argparse
from pathlib import Path

from facelab.cli.common import Subparsers, add_config_options, given_options
from facelab.config import ModelConfig, TrainConfig
from facelab.errors import FacelabError
from facelab.runs.progress import ProgressBar
from facelab.train.presets import PRESETS


def add_train(sub: Subparsers) -> None:
    p = sub.add_parser("train", help="train a swap model on a src and a dst faceset (resumes if --model exists)")
    p.add_argument(
        "--src",
        action="append",
        help="source faceset (the face to put in); give it again to pool more folders (e.g. rendered faces)",
    )
    p.add_argument("--dst", help="destination faceset (the face to replace); --pretrain needs none")
    p.add_argument("--model", help="model folder; an existing one is resumed")
    p.add_argument("--pretrained", metavar="MODEL", help="a new --model starts as a copy of this --pretrain model")
    p.add_argument("--iters", type=int, help="train until this many iterations in total")
    p.add_argument("--minutes", type=float, help="train for this many minutes")
    p.add_argument("--preset", choices=list(PRESETS), help="named option set (explicit options still win)")
    p.add_argument("--dry-run", action="store_true", help="print the model's parameter counts and exit")
    add_config_options(p, ModelConfig, "model (fixed once a model is created)")
    add_config_options(p, TrainConfig, "training")
    p.set_defaults(func=cmd_train)


def cmd_train(a: argparse.Namespace) -> int:
    from facelab.train.loop import CONFIG_FILE
    from facelab.train.presets import with_preset
    from facelab.train.stage import describe_model, train_model
    from facelab.train.warm import start_from_pretrained

    mcfg, tcfg, given = with_preset(a.preset, given_options(a, ModelConfig), given_options(a, TrainConfig))
    if a.dry_run:
        print(describe_model(mcfg).summary())
        return 0
    needed = ("src", "model") if tcfg.pretrain else ("src", "dst", "model")  # pretraining pools the --src folders
    missing = [n for n in needed if not getattr(a, n)]
    if missing:
        raise FacelabError(f"train needs {', '.join('--' + m for m in missing)}")
    if a.pretrained and not (Path(a.model) / CONFIG_FILE).exists():
        start_from_pretrained(a.pretrained, a.model, mcfg)
        given = given | {"pretrain"}  # the copy leaves pretraining on this run
    with ProgressBar("train", "it") as bar:
        res = train_model(a.src, a.dst, a.model, mcfg, tcfg, given, a.iters, a.minutes, bar.update, log=print)
    print(res.summary())
    return 0
