"""Which folders of a workspace are facesets, and a fast listing of one faceset's faces for the grid.

A grid of 10 000 faces must show its first screen in well under a second, and parsing 10 000 metadata JSONs takes
seconds (even from the faceset's own index). So the studio keeps one small row per face in
``WORKSPACE/.facelab-studio/faces.sqlite``: (size, mtime_ns) to tell it is current, the reason it is broken if it
is, and the few numbers the grid sorts and filters by (the values of ``faceset.sort.SORT_KEYS``, computed by those
very functions). Like the faceset index it is a cache: the files stay the truth, a stale row is re-read, a corrupt
database is rebuilt and an unwritable one is skipped. In memory each faceset's rows are kept while its folder's
mtime stays the same (a face added, removed, renamed or rewritten atomically changes it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from facelab.errors import FacelabError
from facelab.faceset.dfl import is_dfl_face
from facelab.faceset.index import load_metas, read_any_meta
from facelab.faceset.meta import FaceMeta, read_meta_bytes
from facelab.faceset.sort import SORT_KEYS, SORTS, keeps, order_faces, thread_map
from facelab.faceset.store import FACE_EXTS
from facelab.io.media import cut_short
from facelab.io.sqlite_cache import open_versioned
from facelab.studio.security import relative_name, walk_inside

log = logging.getLogger(__name__)

DB_NAME = "faces.sqlite"
_DB_VERSION = 1  # bump when the table's layout or meaning changes
FIND_DEPTH = 4  # folders below the workspace searched for facesets
VIDEO_EXTS = frozenset({".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v"})  # what the jobs and merge pages offer
PROBE_FILES = 3  # images of a folder read to decide whether it is a faceset
GRID_SORTS = ("name", *SORTS)  # 'name': the folder's own order


@dataclass(frozen=True)
class FacesetEntry:
    rel: str  # path inside the workspace, '/'-separated ('' = the workspace itself)
    name: str  # the folder's name
    images: int  # image files in it (faces and any broken ones)


@dataclass(frozen=True)
class FaceRow:
    """One face as the grid needs it. ``why`` is None for a readable face, else why it is broken."""

    name: str
    size: int
    mtime_ns: int
    why: str | None = None
    yaw: float = 0.0
    pitch: float = 0.0
    blur: float = 0.0
    synthetic: bool = False
    keys: dict[str, float] = field(default_factory=dict)  # SORT_KEYS values

    @property
    def version(self) -> str:
        """Changes whenever the file does: part of the thumbnail's URL, so browsers may cache it for good."""
        return f"{self.size:x}-{self.mtime_ns:x}"


@dataclass(frozen=True)
class GridQuery:
    """A grid's sort and filters (the query string of ``/api/faces``)."""

    sort: str = "name"
    reverse: bool = False  # the opposite of the sort's own order (descending for the SORT_KEYS, as the CLI)
    yaw: tuple[float, float] | None = None
    pitch: tuple[float, float] | None = None
    min_blur: float | None = None
    synthetic: str = "all"  # all | real | synthetic
    photo: Path | None = None  # sort 'identity': the reference photo (resolved inside the workspace)


# --- finding facesets --------------------------------------------------------------------------------------------


def find_facesets(root: Path, depth: int = FIND_DEPTH) -> list[FacesetEntry]:
    """The folders of ``root`` (itself included, hidden ones not) that hold facelab or DFL faces, by path."""
    found: list[FacesetEntry] = []
    for folder, _, entries, _ in walk_inside(root, depth):
        images = [Path(e.path) for e in entries if _is_image_entry(e)]
        if images and any(_is_face(p) for p in images[:PROBE_FILES]):
            rel = folder.relative_to(root).as_posix()
            found.append(FacesetEntry("" if rel == "." else rel, folder.name, len(images)))
    return found


def _is_image_entry(e: os.DirEntry[str]) -> bool:
    return not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in FACE_EXTS and e.is_file()


def _is_face(path: Path) -> bool:
    try:
        if read_meta_bytes(path.read_bytes()) is not None:
            return True
    except (OSError, FacelabError):
        return False
    return is_dfl_face(path)


# --- the face index ----------------------------------------------------------------------------------------------


class FaceIndex:
    """The rows of each faceset's faces, cached in memory and in ``faces.sqlite`` (see the module's doc)."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._locks: dict[str, threading.Lock] = {}  # per faceset: two first visits must not read its files twice
        self._locks_lock = threading.Lock()
        self._mem: dict[str, tuple[tuple[int, int], list[FaceRow]]] = {}

    def rows(self, folder: Path, rel: str) -> list[FaceRow]:
        """Every image of ``folder`` in name order, readable or broken, current as of this call."""
        with self._lock_of(rel):
            key = folder_key(folder)
            cached = self._mem.get(rel)
            if cached is not None and cached[0] == key:
                return cached[1]
            rows = self._refresh(folder, rel)
            self._mem[rel] = (key, rows)
            return rows

    def forget(self, rel: str) -> None:
        """Drop the in-memory rows of a faceset (after the studio itself moved faces in or out)."""
        with self._lock_of(rel):
            self._mem.pop(rel, None)

    def _lock_of(self, rel: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(rel, threading.Lock())

    def _refresh(self, folder: Path, rel: str) -> list[FaceRow]:
        stats = _scan(folder)
        with self._db() as con:
            stored = _load_rows(con, rel) if con is not None else {}
            current = {n: r for n, r in stored.items() if n in stats and (r.size, r.mtime_ns) == stats[n]}
            missing = [n for n in stats if n not in current]
            fresh = thread_map(lambda n: read_row(folder / n, *stats[n]), missing)  # file reads overlap
            current.update((r.name, r) for r in fresh)
            if con is not None:
                _write_rows(con, rel, fresh, [n for n in stored if n not in stats])
        return [current[n] for n in sorted(current)]

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection | None]:
        con = _open_db(self.db_path)
        try:
            yield con
        finally:
            if con is not None:
                con.close()


def folder_key(folder: Path) -> tuple[int, int]:
    """(mtime_ns, inode) of a folder: changes when an entry is added, removed or renamed (atomic rewrites too)."""
    try:
        st = folder.stat()
    except OSError:
        return (0, 0)
    return st.st_mtime_ns, st.st_ino


def _scan(folder: Path) -> dict[str, tuple[int, int]]:
    """name -> (size, mtime_ns) of the visible images of ``folder`` (the files ``faceset.store.face_files`` lists)."""
    out: dict[str, tuple[int, int]] = {}
    try:
        entries = list(os.scandir(folder))
    except OSError as e:
        raise FacelabError(f"{folder.name}: cannot read the folder ({e.strerror or e})") from e
    for e in entries:
        if e.name.startswith(".") or os.path.splitext(e.name)[1].lower() not in FACE_EXTS:
            continue
        try:
            st = e.stat()
        except OSError:  # a dangling symlink, or removed since the listing
            continue
        if not stat.S_ISDIR(st.st_mode):
            out[e.name] = (st.st_size, st.st_mtime_ns)
    return out


def read_row(path: Path, size: int, mtime_ns: int) -> FaceRow:
    """The grid's row of one file (broken, with the reason, when ``read_face_meta`` finds it unreadable)."""
    meta, why = read_face_meta(path)
    if meta is None:
        return FaceRow(path.name, size, mtime_ns, why)
    keys = {k: float(f(meta)) for k, f in SORT_KEYS.items()}
    return FaceRow(path.name, size, mtime_ns, None, meta.yaw, meta.pitch, meta.blur, bool(meta.synthetic), keys)


def read_face_meta(path: Path) -> tuple[FaceMeta | None, str | None]:
    """(metadata, None) of a readable face, (None, why) of a broken one: the unreadable-face policy of
    ``faceset.readable`` (cut short, metadata missing or corrupt), the metadata read as ``faceset.index`` does (DFL
    faces converted)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        return None, f"cannot read ({e.strerror or e})"
    why = cut_short(data[:8], data[-16:])
    if why:
        return None, why
    try:
        meta = read_meta_bytes(data)
    except FacelabError as e:
        return None, str(e)
    if meta is None:
        meta = read_any_meta(path)  # a DFL face, converted (None, with a warning, for any other image)
    return (meta, None) if meta is not None else (None, "not a facelab or DFL face (no embedded metadata)")


def _with_why(row: FaceRow, why: str) -> FaceRow:
    return FaceRow(row.name, row.size, row.mtime_ns, why)


# --- sqlite plumbing ---------------------------------------------------------------------------------------------

_COLUMNS = "name, size, mtime_ns, why, yaw, pitch, blur, synthetic, keys"


def _open_db(path: Path) -> sqlite3.Connection | None:
    """A connection to the index (made or rebuilt as needed), or None where none can be used."""
    schema = (
        "CREATE TABLE faces (faceset TEXT, name TEXT, size INTEGER, mtime_ns INTEGER, why TEXT,"
        " yaw REAL, pitch REAL, blur REAL, synthetic INTEGER, keys TEXT, PRIMARY KEY (faceset, name))"
    )
    opened = open_versioned(path, _DB_VERSION, schema, "studio face index")
    return None if opened is None else opened[0]


def _load_rows(con: sqlite3.Connection, rel: str) -> dict[str, FaceRow]:
    try:
        cur = con.execute(f"SELECT {_COLUMNS} FROM faces WHERE faceset = ?", (rel,))
        return {r[0]: FaceRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), json.loads(r[8])) for r in cur}
    except (sqlite3.Error, ValueError) as e:
        log.debug("studio face index not read: %s", e)
        return {}


def _write_rows(con: sqlite3.Connection, rel: str, fresh: Sequence[FaceRow], gone: Sequence[str]) -> None:
    if not fresh and not gone:
        return
    values = [
        (rel, r.name, r.size, r.mtime_ns, r.why, r.yaw, r.pitch, r.blur, int(r.synthetic), json.dumps(r.keys))
        for r in fresh
    ]
    try:
        with con:
            con.executemany("DELETE FROM faces WHERE faceset = ? AND name = ?", [(rel, n) for n in gone])
            con.executemany(f"INSERT OR REPLACE INTO faces (faceset, {_COLUMNS}) VALUES ({','.join('?' * 10)})", values)
    except sqlite3.Error as e:  # read-only, full disk, locked: the index is only a cache
        log.debug("studio face index not written: %s", e)


# --- sort and filter ---------------------------------------------------------------------------------------------


def grid_view(
    folder: Path, rows: list[FaceRow], q: GridQuery, orders: PixelOrders | None = None, rel: str = ""
) -> list[FaceRow]:
    """The rows the grid shows, in order: the readable faces that pass the filters, sorted; then the broken ones
    in name order (they can be neither judged nor ranked, as after a ``faceset sort``). ``orders``: where the
    'hist' and 'identity' orders of faceset ``rel`` are kept between calls."""
    if q.sort not in GRID_SORTS:
        raise FacelabError(f"unknown sort {q.sort!r} (one of: {', '.join(GRID_SORTS)})")
    good = [r for r in rows if r.why is None]
    broken = [r for r in rows if r.why is not None]
    if q.sort in SORT_KEYS:
        good = sorted(good, key=lambda r: r.keys.get(q.sort, 0.0), reverse=not q.reverse)  # ties stay in name order
    elif q.sort != "name":  # the whole faceset is ranked (and kept), then filtered
        order, bad = (orders or PixelOrders()).order(folder, rel, good, q)
        by_name = {r.name: r for r in good}
        broken = sorted(broken + [_with_why(by_name[n], "face image data is corrupt") for n in bad], key=_name)
        good = [by_name[n] for n in (order[::-1] if q.reverse else order)]
    elif q.reverse:
        good = good[::-1]
    return [r for r in good if _passes(r, q)] + broken


def _name(r: FaceRow) -> str:
    return r.name


def _passes(r: FaceRow, q: GridQuery) -> bool:
    if q.synthetic == "real" and r.synthetic or q.synthetic == "synthetic" and not r.synthetic:
        return False
    # faceset filter's own test; it reads only .yaw, .pitch and .blur, which a row carries
    return keeps(cast(FaceMeta, r), q.yaw, q.pitch, q.min_blur)


class PixelOrders:
    """The 'hist' and 'identity' orders of the facesets, made by ``faceset.sort.order_faces`` itself. They read
    every face's pixels (seconds per thousand faces), so each is kept while no face of the faceset is new or
    changed: after a trash or a restore of known faces the kept order is only filtered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (faceset, sort, photo) -> (names in order, names whose pixels do not decode, {name: version} ranked)
        self._kept: dict[tuple[str, str, str], tuple[list[str], set[str], dict[str, str]]] = {}

    def order(self, folder: Path, rel: str, good: list[FaceRow], q: GridQuery) -> tuple[list[str], list[str]]:
        """(names of ``good`` in the order of ``q.sort``, names among them whose pixels do not decode)."""
        key = (rel, q.sort, f"{q.photo}:{q.photo.stat().st_mtime_ns}" if q.photo else "")
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or any(kept[2].get(r.name) != r.version for r in good):
                kept = self._rank(folder, good, q)
                self._kept[key] = kept
        present = {r.name for r in good}
        return [n for n in kept[0] if n in present], sorted(kept[1] & present)

    @staticmethod
    def _rank(folder: Path, good: list[FaceRow], q: GridQuery) -> tuple[list[str], set[str], dict[str, str]]:
        versions = {r.name: r.version for r in good}
        if not good:
            return [], set(), versions
        faces = [(p, m) for p, m in load_metas(folder) if p.name in versions]
        unreadable: list[Path] = []
        order = order_faces(faces, q.sort, q.photo, unreadable)
        return [p.name for p in order], {p.name for p in unreadable}, versions


def view_json(rows: Sequence[FaceRow], total: int, sort: str) -> dict[str, Any]:
    """The grid's listing, column-wise (10 000 faces in a few hundred kB)."""
    return {
        "total": total,
        "names": [r.name for r in rows],
        "versions": [r.version for r in rows],
        "broken": [r.why for r in rows],
        "synthetic": [int(r.synthetic) for r in rows],
        "key": [round(r.keys[sort], 2) if sort in r.keys and r.why is None else None for r in rows],
    }


def find_videos(root: Path, depth: int = FIND_DEPTH) -> list[str]:
    """Video files of the workspace (hidden folders skipped), by path."""
    return [relative_name(root, p) for p in _walk(root, depth) if p.is_file() and p.suffix.lower() in VIDEO_EXTS]


def find_models(root: Path, depth: int = FIND_DEPTH) -> list[str]:
    """Model folders of the workspace (those with a ``checkpoint/`` from ``facelab train``), by path."""
    return [relative_name(root, p) for p in _walk(root, depth) if p.is_dir() and (p / "checkpoint").is_dir()]


def _walk(root: Path, depth: int) -> list[Path]:
    found: list[Path] = []
    for here, dirs, files in os.walk(root):
        level = len(Path(here).relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "checkpoint") if level < depth else []
        base = Path(here)
        found += [base / d for d in dirs]
        found += [base / f for f in sorted(files) if not f.startswith(".")]
    return sorted(found)
