"""Warm start: a new swap model begins as a copy of a pretrained one.

DFL's workflow: pretrain once on many people's faces (``facelab train --pretrain --src A --src B ...``), then start
every pair from a copy. The first run on the pair leaves pretraining (``Trainer._restore``: the count restarts at
0, the inters are re-initialised, the optimizers start fresh), so the copy keeps the encoder and decoders.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import fields
from pathlib import Path

from facelab.config import ModelConfig
from facelab.errors import FacelabError
from facelab.io.checkpoint import CKPT
from facelab.train.loop import CONFIG_FILE


def check_pretrained(pretrained: str | Path, mcfg: ModelConfig) -> None:
    """A one-line error unless ``pretrained`` is a folder trained with ``--pretrain``, with a checkpoint, of the
    architecture ``mcfg`` (the differences are named)."""
    pretrained = Path(pretrained)
    try:
        doc = json.loads((pretrained / CONFIG_FILE).read_text())
        have, pretraining = ModelConfig(**doc["model"]), bool(doc["train"].get("pretrain"))
    except FileNotFoundError:
        raise FacelabError(f"{pretrained}: not a facelab model folder (no {CONFIG_FILE})") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FacelabError(f"{pretrained}: not a facelab model config ({e})") from e
    if not pretraining:
        raise FacelabError(f"{pretrained}: not a pretrained model (make one with 'facelab train --pretrain')")
    if not (pretrained / CKPT / "state.json").is_file():
        raise FacelabError(f"{pretrained}: pretrained model has no checkpoint yet")
    diff = [f"{f.name} {getattr(have, f.name)} (wanted {getattr(mcfg, f.name)})" for f in fields(have)
            if getattr(have, f.name) != getattr(mcfg, f.name)]  # fmt: skip
    if diff:
        raise FacelabError(f"{pretrained}: pretrained with other model options: {', '.join(diff)}")


def start_from_pretrained(pretrained: str | Path, model_dir: str | Path, mcfg: ModelConfig) -> None:
    """Copy ``pretrained``'s config and checkpoint into the new ``model_dir`` (a staging folder renamed into place,
    so a kill leaves either nothing or the whole copy). ``mcfg`` is the architecture the caller wants; a pretrained
    model of another one is refused, naming the differences."""
    pretrained, model_dir = Path(pretrained), Path(model_dir)
    if model_dir.exists() and (not model_dir.is_dir() or any(model_dir.iterdir())):
        raise FacelabError(f"{model_dir}: not empty; a pretrained start makes a new model folder")
    check_pretrained(pretrained, mcfg)
    stage = model_dir.with_name(model_dir.name + ".partial")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    shutil.copy2(pretrained / CONFIG_FILE, stage / CONFIG_FILE)
    shutil.copytree(pretrained / CKPT, stage / CKPT)
    if model_dir.exists():
        model_dir.rmdir()  # empty (checked above): os.replace cannot put a folder over a folder
    os.replace(stage, model_dir)
