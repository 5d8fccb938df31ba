"""Named presets so a user need not know 15 options: each is (ModelConfig overrides, TrainConfig overrides)."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from facelab.config import ModelConfig, TrainConfig

PRESETS: dict[str, tuple[dict, dict]] = {
    # Quick96-like: small DF-UD at 96 px, RMSprop 2e-4 with lr dropout; trains visibly in minutes on a laptop CPU.
    "cpu-quick": (
        {"archi": "df-ud", "resolution": 96, "face_type": "full", "ae_dims": 128, "e_dims": 64, "d_dims": 64,
         "d_mask_dims": 16},
        {"batch": 4, "optimizer": "rmsprop", "lr": 2e-4, "lr_dropout": 0.3, "random_src_flip": False,
         "random_dst_flip": False, "preview_every": 100},
    ),
    # DFL's SAEHD new-model defaults.
    "standard": ({}, {}),
    # A GPU preset: 256 px whole face, deeper LIAE, eyes/mouth priority and a light GAN once the faces are sharp.
    "quality": (
        {"archi": "liae-udt", "resolution": 256, "face_type": "whole_face", "ae_dims": 256, "e_dims": 64, "d_dims": 64,
         "d_mask_dims": 22},
        {"batch": 8, "eyes_mouth_prio": True, "uniform_yaw": True, "ct_mode": "rct", "clip_grad": 1.0},
    ),
}  # fmt: skip


def preset(name: str) -> tuple[ModelConfig, TrainConfig]:
    try:
        m, t = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})") from None
    return replace(ModelConfig(), **m), replace(TrainConfig(), **t)


def with_preset(
    name: str | None, model_opts: dict[str, Any], train_opts: dict[str, Any]
) -> tuple[ModelConfig, TrainConfig, set[str]]:
    """The configs of preset ``name`` (None = the defaults) with the explicitly given options on top, and the names
    of the options that count as given: the explicit ones and every one the preset changes (a resumed model keeps
    its own configs except for these)."""
    mcfg, tcfg = preset(name) if name else (ModelConfig(), TrainConfig())
    given = set(model_opts) | set(train_opts) | _changed(mcfg, ModelConfig()) | _changed(tcfg, TrainConfig())
    return replace(mcfg, **model_opts), replace(tcfg, **train_opts), given


def _changed(cfg: Any, default: Any) -> set[str]:
    return {f.name for f in fields(cfg) if getattr(cfg, f.name) != getattr(default, f.name)}
