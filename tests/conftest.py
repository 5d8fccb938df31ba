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
    from facelab.extract.finder import FaceFinder

    return FaceFinder()
