"""Where the model files that ship inside installed packages live (nothing is downloaded)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from facelab.errors import FacelabError


def package_dir(name: str) -> Path:
    """Folder of an installed package, found without importing it (``face_recognition_models`` imports
    ``pkg_resources`` at import time, which newer setuptools lack)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FacelabError(f"package {name!r} is not installed (run 'make test' or 'pip install -r requirements.txt')")
    return Path(list(spec.submodule_search_locations)[0])


def dlib_model(filename: str) -> str:
    """Path of one of dlib's model files shipped by the ``face_recognition_models`` package."""
    path = package_dir("face_recognition_models") / "models" / filename
    if not path.is_file():
        raise FacelabError(f"{path}: dlib model file missing from face_recognition_models")
    return str(path)


def dlib_module() -> ModuleType:
    """dlib, imported when a dlib model is built rather than when facelab is: a process that never builds one
    (training or merging from a faceset, on a machine without dlib) does not need it."""
    try:
        import dlib
    except ImportError as e:
        raise FacelabError("dlib is not installed (run 'make test' or 'pip install -r requirements.txt')") from e
    return dlib
