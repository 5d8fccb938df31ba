"""Load a trained swap model for inference and export (no optimizer state, eval mode)."""

from __future__ import annotations

from pathlib import Path

from facelab.config import ModelConfig
from facelab.errors import FacelabError
from facelab.io.checkpoint import require, submodule
from facelab.models.saehd import SAEHD


def load_model(model_dir: str | Path) -> tuple[SAEHD, ModelConfig]:
    """The trained swap model of ``model_dir`` (eval mode, CPU) and its ModelConfig, for inference and export."""
    model_dir = Path(model_dir)
    ck = require(model_dir, "no trained model here (no checkpoint)")
    try:
        cfg = ModelConfig(**ck.state["model"])
    except (KeyError, TypeError) as e:
        raise FacelabError(f"{model_dir}: checkpoint has no usable model config ({e})") from e
    model = SAEHD(cfg)
    model.load_state_dict(submodule(ck.model, "model"))
    return model.eval(), cfg
