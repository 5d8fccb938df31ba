"""Checkpoints: a folder of safetensors + JSON (never pickle), replaced atomically.

``<model>/checkpoint/`` holds ``model.safetensors``, ``optimizer.safetensors`` + ``optimizer.json`` (the tensor and
plain parts of each optimizer's state) and ``state.json`` (iteration, loss history, RNG states, configs). A save
writes ``checkpoint.tmp/`` (every file fsynced), moves the old folder to ``checkpoint.old/``, renames the new one
into place and only then deletes the old one. A crash at any point leaves ``checkpoint/`` or ``checkpoint.old/``
complete, and ``load`` takes whichever is. Corrupt files fall back to the newest backup, with a warning.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from facelab.errors import FacelabError

log = logging.getLogger(__name__)

CKPT, TMP, OLD, BACKUPS = "checkpoint", "checkpoint.tmp", "checkpoint.old", "backups"


@dataclass
class Checkpoint:
    model: dict[str, torch.Tensor]
    optimizers: dict[str, dict[str, Any]]  # name -> torch optimizer state_dict
    state: dict[str, Any] = field(default_factory=dict)  # JSON-able: iteration, history, configs, rng


def save(model_dir: str | Path, ckpt: Checkpoint) -> None:
    model_dir = Path(model_dir)
    tmp, cur, old = model_dir / TMP, model_dir / CKPT, model_dir / OLD
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        save_file(_contiguous(ckpt.model), str(tmp / "model.safetensors"))
        tensors, plain = {}, {}
        for name, sd in ckpt.optimizers.items():
            t, p = _split_optimizer_state(sd)
            tensors.update({f"{name}.{k}": v for k, v in t.items()})
            plain[name] = p
        save_file(_contiguous(tensors), str(tmp / "optimizer.safetensors"))
        (tmp / "optimizer.json").write_text(json.dumps(plain))
        (tmp / "state.json").write_text(json.dumps(ckpt.state))
        for f in tmp.iterdir():
            _fsync(f)
        _fsync(tmp)
        if cur.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(cur, old)
        os.replace(tmp, cur)
        _fsync(model_dir)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if not cur.exists() and old.exists():
            os.replace(old, cur)
        why = "out of disk space" if e.errno == errno.ENOSPC else (e.strerror or str(e))
        raise FacelabError(f"{model_dir}: checkpoint not saved ({why}); the previous checkpoint is intact") from e


def load(model_dir: str | Path) -> Checkpoint | None:
    """The newest complete checkpoint of ``model_dir`` (None if it has none); falls back to backups if corrupt."""
    model_dir = Path(model_dir)
    try:
        candidates = [model_dir / CKPT, model_dir / OLD] + sorted((model_dir / BACKUPS).glob("iter_*"), reverse=True)
        candidates = [c for c in candidates if (c / "state.json").exists()]
    except OSError as e:  # a model folder without read permission
        raise FacelabError(f"{model_dir}: cannot read ({e.strerror or e})") from e
    errors = []
    for c in candidates:
        try:
            ckpt = _load_dir(c)
        except Exception as e:  # noqa: BLE001 - any corruption: try the next candidate, report all
            errors.append(f"{c}: {type(e).__name__}: {e}")
            continue
        if errors:
            log.warning("corrupt checkpoint skipped (%s); resumed from %s", "; ".join(errors), c)
        return ckpt
    if errors:
        raise FacelabError(f"{model_dir}: every checkpoint is unreadable ({'; '.join(errors)})")
    return None


def require(model_dir: str | Path, missing: str) -> Checkpoint:
    """``load``, but a folder without a checkpoint is an error: ``"<dir>: <missing>"``."""
    ck = load(model_dir)
    if ck is None:
        raise FacelabError(f"{model_dir}: {missing}")
    return ck


def backup(model_dir: str | Path, iteration: int, keep: int) -> None:
    """Copy the current checkpoint to ``backups/iter_NNNNNNNN`` and keep the newest ``keep`` backups."""
    model_dir = Path(model_dir)
    dest = model_dir / BACKUPS / f"iter_{iteration:08d}"
    if dest.exists():
        return
    dest.parent.mkdir(exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(model_dir / CKPT, tmp)
    os.replace(tmp, dest)
    for stale in sorted(p for p in dest.parent.glob("iter_*") if not p.name.endswith(".tmp"))[:-keep]:
        shutil.rmtree(stale, ignore_errors=True)


def submodule(tensors: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """The entries saved under ``name.`` (one module of a checkpoint), with the prefix removed."""
    prefix = name + "."
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def init_modules(src: str | Path, modules: dict[str, torch.nn.Module], what: str) -> int | None:
    """Fine-tuning: load ``modules`` (by name) from the checkpoint of run folder ``src``; optimizers stay fresh.
    One-line errors name ``src`` when it holds no checkpoint or its ``what`` has another shape. Returns the
    iteration ``src`` was saved at."""
    ck = require(src, f"no {what} checkpoint to start from")
    for name, mod in modules.items():
        try:
            mod.load_state_dict(submodule(ck.model, name))
        except RuntimeError as e:
            raise FacelabError(f"{src}: {what} does not fit this config ({str(e).splitlines()[0]})") from e
    return ck.state.get("iteration")


def _load_dir(d: Path) -> Checkpoint:
    state = json.loads((d / "state.json").read_text())
    model = load_file(str(d / "model.safetensors"))
    tensors = load_file(str(d / "optimizer.safetensors"))
    plain = json.loads((d / "optimizer.json").read_text())
    optimizers = {}
    for name, p in plain.items():
        optimizers[name] = _join_optimizer_state(submodule(tensors, name), p)
    return Checkpoint(model, optimizers, state)


def _split_optimizer_state(sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """torch optimizer state_dict -> (flat tensors, JSON-able rest)."""
    tensors: dict[str, torch.Tensor] = {}
    plain_state: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        plain_state[str(idx)] = {}
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"{idx}.{k}"] = v
            else:
                plain_state[str(idx)][k] = v
    return tensors, {"state": plain_state, "param_groups": sd["param_groups"]}


def _join_optimizer_state(tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(i): dict(v) for i, v in plain["state"].items()}
    for key, t in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = t
    return {"state": state, "param_groups": plain["param_groups"]}


def _contiguous(d: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in d.items()}


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
