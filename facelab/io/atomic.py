"""Atomic file writes: write a temp file beside the target, fsync, rename.

A reader never sees a half-written face or checkpoint; a crash leaves at most a stray ``.tmp`` file, which
``write_atomic`` removes on failure and which faceset readers ignore.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from facelab.errors import FacelabError


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so the file is either the old one or completely the new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; faces and checkpoints are ordinary files
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if e.errno == errno.ENOSPC:
            raise FacelabError(f"{path}: out of disk space (partial file removed)") from e
        raise FacelabError(f"{path}: cannot write ({e.strerror or e})") from e


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def ensure_writable_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` if needed and check a file can be created in it; one-line error otherwise."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".probe.", dir=path)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise FacelabError(f"{path}: output folder is not writable ({e.strerror or e})") from e
    return path
