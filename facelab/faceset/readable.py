"""One policy for face files that cannot be read, shared by every faceset command (info, sort, dedupe, filter,
coverage): the file is skipped with a warning naming it, recorded in the command's result (``unreadable``) and
its summary, and the command carries on with the other faces; it fails, with one line, only when no face at all
can be read. A skipped file is never renamed or moved: only a command meant to quarantine such files would.

Unreadable means: the file cannot be opened, its metadata is missing or corrupt (``index.load_metas`` warns),
it is cut short (no JPEG end marker / PNG end chunk: judged from its last bytes, so the commands that need only
the metadata stay as fast as the index makes them), or, for the commands that need the pixels, they do not
decode.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from facelab.errors import FacesetError
from facelab.faceset.index import load_metas
from facelab.faceset.meta import FaceMeta
from facelab.io.media import cut_short

log = logging.getLogger(__name__)

_HEAD, _TAIL = 8, 16  # bytes read from each end of a file to see that it is whole
NAMES_SHOWN = 10  # in a summary line; the warnings name every file


def readable_faces(folder: str | Path, unreadable: list[Path]) -> list[tuple[Path, FaceMeta]]:
    """(path, meta) of the faces of ``folder`` that are whole, in name order; the others are warned about and
    appended to ``unreadable``. FacesetError when the folder is missing or no face in it is readable."""
    skipped: list[Path] = []
    faces = load_metas(folder, skipped=skipped)
    ok = []
    for path, meta in faces:
        why = _why_cut_short(path)
        if why is None:
            ok.append((path, meta))
        else:
            log.warning("%s: skipped, %s", path, why)
            skipped.append(path)
    unreadable.extend(skipped)
    if not ok:
        raise no_readable_faces(folder, skipped)
    return ok


def face_pixels(path: Path, unreadable: list[Path], gray: bool = False, side: int | None = None) -> np.ndarray | None:
    """The BGR (or grayscale) pixels of a face, resized to ``side`` x ``side`` with area averaging if given; None
    when the file cannot be read or decoded: it is then warned about and appended to ``unreadable`` (safe to call
    from several threads: list.append is atomic)."""
    read = face_data(path, unreadable, gray)
    if read is None:
        return None
    img = read[1]
    return img if side is None else cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)


def face_data(path: Path, unreadable: list[Path], gray: bool = False) -> tuple[bytes, np.ndarray] | None:
    """The bytes of a face file and its decoded BGR (or grayscale) pixels, from one read (for a command that
    rewrites the file's metadata); None, warned about and appended to ``unreadable`` as ``face_pixels``."""
    try:
        data = path.read_bytes()
    except OSError as e:
        return _skip(path, f"cannot read ({e.strerror or e})", unreadable)
    why = cut_short(data[:_HEAD], data[-_TAIL:])
    flags = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
    img = None if why else cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if img is None:
        return _skip(path, why or "face image data is corrupt", unreadable)
    return data, img


def no_readable_faces(folder: str | Path, unreadable: Sequence[Path]) -> FacesetError:
    return FacesetError(f"{folder}: no readable faces ({skipped_line(unreadable)})")


def skipped_line(unreadable: Sequence[Path], with_folder: bool = False) -> str:
    """``2 unreadable faces skipped: a.jpg, b.jpg`` (the first few names; the warnings listed them all)."""
    names = [f"{p.parent.name}/{p.name}" if with_folder else p.name for p in unreadable]
    more = f", +{len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
    return (
        f"{len(names)} unreadable face{'s' if len(names) != 1 else ''} skipped: {', '.join(names[:NAMES_SHOWN])}{more}"
    )


def _skip(path: Path, why: str, unreadable: list[Path]) -> None:
    log.warning("%s: skipped, %s", path, why)
    unreadable.append(path)
    return None


def _why_cut_short(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD)
            f.seek(max(0, os.fstat(f.fileno()).st_size - _TAIL))
            tail = f.read()
    except OSError as e:
        return f"cannot read ({e.strerror or e})"
    return cut_short(head, tail)
