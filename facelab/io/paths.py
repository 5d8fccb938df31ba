"""Where outputs may go: never over an input, into an input folder, or (for folders a command empties) around one.

Every stage calls ``refuse_overlap`` before it writes anything, so ``facelab merge in.mp4 -o in.mp4`` or a
``--trash`` inside the faceset it tidies fails with one line instead of destroying the input.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from facelab.errors import FacelabError

PathArg = str | os.PathLike[str] | None


def refuse_overlap(
    inputs: Mapping[str, PathArg],
    outputs: Mapping[str, PathArg],
    emptied: Mapping[str, PathArg] | None = None,
) -> None:
    """Raise a one-line FacelabError when an output would replace an input or land inside an input folder, or
    when a folder the command empties before writing holds an input.

    ``inputs``: what each input is ("input video", "model folder") -> its path; ``outputs`` and ``emptied``: the
    option that names each output ("-o", "--trash") -> its path. None entries are skipped. Paths are compared
    after resolving symlinks and ".."; where both exist, by file identity too (hard links, case-insensitive
    file systems)."""
    named = [(what, Path(p)) for what, p in inputs.items() if p is not None]
    for opt, out in outputs.items():
        if out is None:
            continue
        out = Path(out)
        for what, inp in named:
            if _same(out, inp):
                raise FacelabError(f"{out}: output would overwrite the {what} (use another {opt})")
            if _inside(out, inp):
                raise FacelabError(f"{out}: output would land inside the {what} {inp} (use another {opt})")
    for opt, folder in (emptied or {}).items():
        if folder is None:
            continue
        folder = Path(folder)
        for what, inp in named:
            if _same(folder, inp) or _inside(inp, folder):
                raise FacelabError(
                    f"{folder}: output folder is emptied before it is written and holds the {what} {inp} "
                    f"(use another {opt})"
                )


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare where they would be
        return a.resolve() == b.resolve()


def _inside(path: Path, folder: Path) -> bool:
    """``path`` lies somewhere below ``folder``."""
    return any(_same(parent, folder) for parent in path.resolve().parents)


def media_label(role: str, path: str | os.PathLike[str]) -> str:
    """How an error names a media input: ``"<role> folder"``, ``"<role> image"`` or ``"<role> video"``."""
    from facelab.io.media import is_image_path

    p = Path(path)
    return f"{role} {'folder' if p.is_dir() else 'image' if is_image_path(p) else 'video'}"
