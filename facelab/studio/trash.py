"""The studio's trash: faces moved out of a faceset by atomic renames, and back under their own names.

The faceset tools never delete either, and keep their trash outside the faceset (``--trash DIR``; one inside would
be read back as faces). The studio's trash is ``WORKSPACE/.facelab-studio/trash/<faceset path>/<batch>/<name>``: a
folder per trash action (``<batch>``: its time and a random tag), so a face keeps its exact name, the undo of one
action restores exactly its faces, and two faces of the same name trashed at different times never collide.
Nothing here deletes a face: emptying the trash is left to the user (delete the folder).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from facelab.faceset.store import FACE_EXTS
from facelab.studio.security import StudioError, is_plain_name

TRASH_DIR = "trash"  # under the studio's data folder
BATCH = re.compile(r"^\d{8}T\d{6}-[0-9a-f]{6}$")
_LOCK = threading.Lock()  # requests run on a thread pool: one move at a time keeps the no-clobber checks true


@dataclass(frozen=True)
class TrashBatch:
    faceset: str  # the faceset's path in the workspace ('' = the workspace itself)
    batch: str
    names: list[str]


def trash_faces(trash_root: Path, folder: Path, rel: str, names: list[str]) -> TrashBatch:
    """Move the faces ``names`` of ``folder`` (faceset ``rel``) into a new batch of the trash. All are checked
    before the first moves, and a move that fails puts the moved ones back: all or nothing."""
    names = list(dict.fromkeys(names))
    if not names:
        raise StudioError("no faces selected", 400)
    for n in names:
        _check_name(n)
    with _LOCK:
        for n in names:
            if not os.path.lexists(folder / n) or os.path.isdir(folder / n):
                raise StudioError(
                    f"{rel_join(rel, n)}: no such face (moved or renamed meanwhile?); nothing trashed", 404
                )
        batch = new_batch_name()
        dest = trash_root.joinpath(*_parts(rel), batch)
        try:
            dest.mkdir(parents=True)
        except OSError as e:
            raise StudioError(f"cannot make the trash folder ({e.strerror or e}); nothing trashed", 500) from e
        if dest.stat().st_dev != folder.stat().st_dev:
            _remove_empty(dest, trash_root)
            raise StudioError(
                f"{rel or '.'}: the faceset and the studio's trash are on different filesystems (a move would not be"
                " atomic); nothing trashed",
                409,
            )
        _move_all([(folder / n, dest / n) for n in names], undo_root=trash_root)
    return TrashBatch(rel, batch, names)


def restore_faces(trash_root: Path, folder: Path, rel: str, batch: str, names: list[str] | None = None) -> list[str]:
    """Move faces of trash ``batch`` (all, or ``names``) back into ``folder`` under their names; refused, with
    nothing moved, if a face of that name is there again. Returns the names restored."""
    if not BATCH.match(batch):
        raise StudioError(f"{batch!r}: not a trash batch", 400)
    src = trash_root.joinpath(*_parts(rel), batch)
    if not src.is_dir():
        raise StudioError(f"{rel_join(rel, batch)}: no such batch in the trash (restored already?)", 404)
    with _LOCK:
        present = sorted(p.name for p in src.iterdir() if p.is_file())
        wanted = present if names is None else list(dict.fromkeys(names))
        for n in wanted:
            _check_name(n)
            if n not in present:
                raise StudioError(f"{n}: not in trash batch {batch}; nothing restored", 404)
            if os.path.lexists(folder / n):
                raise StudioError(
                    f"{rel_join(rel, n)}: a file of this name is in the faceset again; nothing restored", 409
                )
        _move_all([(src / n, folder / n) for n in wanted], undo_root=None)
        _remove_empty(src, trash_root)
    return wanted


def list_trash(trash_root: Path, rel: str | None = None) -> list[TrashBatch]:
    """The batches in the trash (of faceset ``rel`` only, when given), newest first."""
    top = trash_root if rel is None else trash_root.joinpath(*_parts(rel))
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        here = Path(dirpath)
        if not BATCH.match(here.name) or here == top:
            continue
        dirnames[:] = []  # a batch holds faces only
        faceset = here.parent.relative_to(trash_root).as_posix()
        if rel is not None and faceset != (rel or "."):
            continue
        names = sorted(n for n in filenames if is_plain_name(n))
        if names:
            out.append(TrashBatch("" if faceset == "." else faceset, here.name, names))
    return sorted(out, key=lambda b: b.batch, reverse=True)


def new_batch_name() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def rel_join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


def _check_name(name: str) -> None:
    if not is_plain_name(name) or os.path.splitext(name)[1].lower() not in FACE_EXTS:
        raise StudioError(f"{name!r}: not a face file name", 400)


def _parts(rel: str) -> list[str]:
    return [p for p in rel.split("/") if p]


def _move_all(moves: list[tuple[Path, Path]], undo_root: Path | None) -> None:
    """Rename each (src, dst), never over an existing file; on a failure rename the done ones back and raise."""
    done: list[tuple[Path, Path]] = []
    try:
        for src, dst in moves:
            if os.path.lexists(dst):
                raise FileExistsError(errno.EEXIST, "exists", str(dst))
            os.rename(src, dst)  # atomic: the face is at one name or the other, never half-copied
            done.append((src, dst))
    except OSError as e:
        for src, dst in reversed(done):
            with contextlib.suppress(OSError):
                os.rename(dst, src)
        if undo_root is not None and moves:
            _remove_empty(moves[0][1].parent, undo_root)
        raise StudioError(f"{moves[len(done)][0].name}: cannot move ({e.strerror or e}); nothing changed", 500) from e


def _remove_empty(folder: Path, stop: Path) -> None:
    """Remove ``folder`` and its parents up to (not including) ``stop`` while they are empty."""
    while folder != stop and folder.is_relative_to(stop):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
