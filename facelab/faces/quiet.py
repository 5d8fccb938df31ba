"""Silence the C++ log lines mediapipe/TFLite print straight to file descriptor 2 while a graph starts up
(they would break the progress bar and look like errors to users)."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator

# mediapipe 0.10.14 calls a protobuf API that protobuf 4.25 marks deprecated, once per graph run
warnings.filterwarnings("ignore", message=r".*SymbolDatabase\.GetPrototype\(\) is deprecated.*")


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    if os.environ.get("FACELAB_NATIVE_LOGS") == "1":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded interpreters)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
