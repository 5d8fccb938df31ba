"""Shared fixtures. Tests that need the real-media set at ../shared/data skip with a reason when it is absent;
the rest run on faces that ship inside packages (matplotlib's Grace Hopper, scikit-image's astronaut)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GLOG_minloglevel", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def shared_path(rel: str) -> Path:
    p = SHARED / rel
    if not p.exists():
        pytest.skip(f"real-media test set not available ({p} missing; it lives in ../shared/data)")
    return p


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_path("")


@pytest.fixture(scope="session")
def hopper() -> np.ndarray:
    """Grace Hopper, 600x512 RGB, shipped inside matplotlib (public domain)."""
    from facelab.demo import hopper_image

    return hopper_image()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """Eileen Collins, 512x512 RGB, shipped inside scikit-image (public domain)."""
    from facelab.demo import astronaut_image

    return astronaut_image()


@pytest.fixture(scope="session")
def finder():
    from facelab.faces.finder import FaceFinder

    return FaceFinder()


def write_h264(path: Path, frames: list[np.ndarray], pix_fmt: str = "yuv420p", fps: int = 30) -> Path:
    """Encode RGB frames as an H.264 file without audio (yuv444p allows odd sizes)."""
    import av

    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.height, vs.width = frames[0].shape[:2]
        vs.pix_fmt = pix_fmt
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            f.pts = i
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
    return path
