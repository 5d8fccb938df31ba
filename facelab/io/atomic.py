"""Atomic file writes: write a temp file beside the target, fsync, rename.

A reader never sees a half-written face or checkpoint; a crash leaves at most a stray ``.tmp`` file, which
``write_atomic`` removes on failure and which faceset readers ignore.

Output folders: ``ensure_writable_dir`` makes one (or says in one line why it cannot), and ``no_empty_dirs_left`` /
``leaves_no_empty_dirs`` take away the empty ones a failed command made.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ParamSpec, TypeVar

from facelab.errors import FacelabError

P = ParamSpec("P")
R = TypeVar("R")


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so the file is either the old one or completely the new one."""
    path = Path(path)
    if path.is_dir():  # os.replace would say only "Is a directory", after the whole write
        raise FacelabError(f"{path}: is a folder; give the name of the file to write")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:  # no such folder, not writable
        raise FacelabError(f"{path}: cannot write ({e.strerror or e})") from e
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


def ensure_writable_dir(path: str | os.PathLike[str], option: str = "output folder") -> Path:
    """Create ``path`` if needed and check a file can be created in it; one-line error otherwise (``option``: what
    the user named it with, e.g. ``-o``, for the hint to choose another)."""
    path = Path(path)
    if path.exists() and not path.is_dir():  # mkdir would only say "File exists"
        raise FacelabError(f"{path}: exists and is a file, not a folder (choose another {option})")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".probe.", dir=path)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise FacelabError(f"{path}: output folder is not writable ({e.strerror or e})") from e
    return path


@contextlib.contextmanager
def no_empty_dirs_left(*paths: str | os.PathLike[str] | None) -> Iterator[None]:
    """If the block fails (or is interrupted), remove the folders among ``paths`` (and their parents) that did
    not exist before it and are still empty, with any empty folders below them: a failed command leaves no empty
    output folder behind. Only empty folders are removed (``rmdir``), never a file."""
    new = [top for top in map(_first_missing, paths) if top is not None]
    try:
        yield
    except BaseException:
        for top in new:
            _remove_empty_tree(top)
        raise


def leaves_no_empty_dirs(*params: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: the call runs inside ``no_empty_dirs_left`` for the folders its arguments ``params`` name."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            bound = sig.bind(*args, **kwargs).arguments
            with no_empty_dirs_left(*(bound.get(p) for p in params)):
                return fn(*args, **kwargs)

        return wrapper

    return decorate


def _first_missing(path: str | os.PathLike[str] | None) -> Path | None:
    """The outermost folder a ``mkdir -p path`` would create, or None if ``path`` exists."""
    if path is None:
        return None
    p = Path(os.path.abspath(path))
    missing = [q for q in (p, *p.parents) if not os.path.lexists(q)]
    return missing[-1] if missing else None


def _remove_empty_tree(top: Path) -> None:
    if not top.is_dir() or top.is_symlink():
        return
    for folder, _, _ in os.walk(top, topdown=False):
        with contextlib.suppress(OSError):  # not empty (or gone): kept
            os.rmdir(folder)
