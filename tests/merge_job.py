"""A short dst clip, its faceset and a tiny trained model (as tests/test_merge.py builds them), made once per test
session for the merge-settings and merge-tuner tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facelab.config import ExtractConfig, ModelConfig, TrainConfig
from facelab.demo import write_motion_clip
from facelab.extract.pipeline import extract
from facelab.train.loop import Trainer

TINY = ModelConfig(archi="df-ud", resolution=64, face_type="full", ae_dims=32, e_dims=16, d_dims=16, d_mask_dims=8)
FAST = TrainConfig(batch=4, workers=0, precision="fp32", preview_every=0, autosave_minutes=1e9)
FRAMES = 16
_built: dict[str, Path] = {}


def merge_job(tmp_path_factory: pytest.TempPathFactory, hopper: np.ndarray, astronaut: np.ndarray) -> Path:
    """A folder holding ``dst.mp4`` (FRAMES frames, 256 px, moving), ``dst_fs`` (its faceset) and ``model``."""
    if "root" not in _built:
        root = tmp_path_factory.mktemp("merge_job")
        src_clip = write_motion_clip(hopper, root / "src.mp4", frames=12, size=256, audio=False)
        dst_clip = write_motion_clip(astronaut, root / "dst.mp4", frames=FRAMES, size=256)
        cfg = ExtractConfig(size=128)
        extract(src_clip, root / "src_fs", cfg)
        extract(dst_clip, root / "dst_fs", cfg)
        Trainer(root / "src_fs", root / "dst_fs", root / "model", TINY, FAST).run(iterations=3)
        _built["root"] = root
    return _built["root"]
