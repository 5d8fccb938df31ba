"""Fast metadata listing of a faceset folder, backed by a disposable sqlite cache.

Reading the metadata of 10 000 faces means reading 10 000 whole files; the faceset tools all start by doing that.
``<folder>/.facelab-index.sqlite`` keeps each face's metadata JSON keyed by (file name, size, mtime_ns). The files
stay the single source of truth: a face deleted or edited by hand is simply dropped from or re-read into the
cache, a corrupt cache is rebuilt, and an unwritable one is skipped.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import cv2
import numpy as np

from facelab.errors import FacelabError, FacesetError
from facelab.faceset.meta import FaceMeta, read_meta_bytes
from facelab.faceset.store import face_files
from facelab.io.sqlite_cache import open_versioned

log = logging.getLogger(__name__)

CACHE_NAME = ".facelab-index.sqlite"
SORT_TMP_DIR = ".facelab-sorting"  # see sort.apply_order: faces mid-rename live here
_CACHE_VERSION = 1  # bump when the table layout or the meaning of its rows changes

Key = tuple[int, int]  # (size, mtime_ns)
Row = tuple[int, int, str]  # (size, mtime_ns, metadata JSON)


def load_metas(folder: str | Path, skipped: list[Path] | None = None) -> list[tuple[Path, FaceMeta]]:
    """(path, meta) of every face in ``folder`` in name order: facelab faces, and DFL faces converted on the fly.

    Other images are skipped with one warning each (and appended to ``skipped``, when given). FacesetError if the
    folder is missing or holds no faces.
    """
    folder = Path(folder)
    files = face_files(folder)  # FacesetError if the folder is missing
    if (folder / SORT_TMP_DIR).is_dir():
        log.warning(
            "%s: an interrupted sort left faces in %s; run 'facelab faceset sort' again to finish it",
            folder,
            SORT_TMP_DIR,
        )
    if not files:
        raise FacesetError(f"{folder}: no face images in this folder")
    opened = _open_cache(folder / CACHE_NAME)
    con, cached = opened if opened is not None else (None, {})
    out: list[tuple[Path, FaceMeta]] = []
    fresh: dict[str, Row] = {}
    for path in files:
        key = _stat_key(path)
        if key is None:  # vanished between listing and stat
            continue
        meta = _from_row(cached.get(path.name), key)
        if meta is None:
            meta = read_any_meta(path)
            if meta is None:
                if skipped is not None:
                    skipped.append(path)
                continue
            fresh[path.name] = (*key, meta.to_json().decode("ascii"))
        out.append((path, meta))
    if con is not None:
        present = {p.name for p, _ in out}
        _write_rows(con, fresh, [n for n in cached if n not in present])
        con.close()
    if not out:
        raise FacesetError(f"{folder}: no facelab or DFL faces in this folder")
    return out


def read_any_meta(path: Path) -> FaceMeta | None:
    """The facelab metadata of one file, else its DFL metadata converted; None (with a warning) for neither."""
    try:
        data = path.read_bytes()
        meta = read_meta_bytes(data)
    except OSError as e:
        log.warning("%s: skipped, cannot read (%s)", path, e.strerror or e)
        return None
    except FacelabError as e:
        log.warning("%s: skipped, %s", path, e)
        return None
    if meta is not None:
        return meta
    meta = _dfl_meta(path, data)
    if meta is None:
        log.warning("%s: skipped, not a facelab or DFL face (no embedded metadata)", path)
    return meta


def rename_in_cache(folder: str | Path, renames: dict[str, str]) -> None:
    """Carry cache rows over a batch of renames (old name -> new name), so a sort does not force a full re-read.

    Best effort: renames keep size and mtime, and a row that is missed here is only re-read next time.
    """
    opened = _open_cache(Path(folder) / CACHE_NAME)
    if opened is None:
        return
    con, rows = opened
    moved = [(renames[n], *rows[n]) for n in renames if n in rows]
    try:
        with con:
            con.executemany("DELETE FROM faces WHERE name = ?", [(n,) for n in renames])
            con.executemany("INSERT OR REPLACE INTO faces VALUES (?, ?, ?, ?)", moved)
    except sqlite3.Error as e:
        log.debug("faceset index not updated after rename: %s", e)
    finally:
        con.close()


# --- cache plumbing ----------------------------------------------------------------------------------------------


def _stat_key(path: Path) -> Key | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _open_cache(path: Path) -> tuple[sqlite3.Connection, dict[str, Row]] | None:
    """A connection to the cache and all its rows by name, or None if no cache can be used here."""
    opened = open_versioned(
        path,
        _CACHE_VERSION,
        "CREATE TABLE faces (name TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, meta TEXT)",
        "faceset index",
        lambda con: {n: (s, m, j) for n, s, m, j in con.execute("SELECT name, size, mtime_ns, meta FROM faces")},
    )
    return None if opened is None else (opened[0], opened[1] or {})


def _from_row(row: Row | None, key: Key) -> FaceMeta | None:
    if row is None or (row[0], row[1]) != key:
        return None
    try:
        return FaceMeta.from_dict(json.loads(row[2]))
    except (ValueError, TypeError, AttributeError, FacelabError):
        return None  # a damaged row is re-read from the file


def _write_rows(con: sqlite3.Connection, fresh: dict[str, Row], gone: list[str]) -> None:
    if not fresh and not gone:
        return
    try:
        with con:
            con.executemany("DELETE FROM faces WHERE name = ?", [(n,) for n in gone])
            con.executemany("INSERT OR REPLACE INTO faces VALUES (?, ?, ?, ?)", [(n, *r) for n, r in fresh.items()])
    except sqlite3.Error as e:  # read-only folder, full disk, locked by another process: the cache is optional
        log.debug("faceset index not written: %s", e)


# --- DFL fallback ------------------------------------------------------------------------------------------------


def _dfl_meta(path: Path, data: bytes) -> FaceMeta | None:
    try:
        from facelab.faceset import dfl
    except ImportError:
        return None
    try:
        if not dfl.is_dfl_face(path):
            return None
        bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            log.warning("%s: skipped, DFL face image data is corrupt", path)
            return None
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # pixels given so the blur score (sort, filter) is real
        return dfl.dfl_to_meta(dfl.read_dfl_meta(path), path, rgb.shape, rgb)
    except FacelabError as e:
        log.warning("%s: skipped, %s", path, e)
        return None
