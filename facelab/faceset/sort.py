"""Ordering, filtering and trashing faces of a faceset (DFL's Sorter, minus its destructive habits).

Sorting renames faces to ``{rank:05d}_{name}`` (or only writes the order to a text file); it never deletes, and a
rank prefix from an earlier sort is replaced, not stacked. Rejects are moved to a trash folder, never removed.
Faces that cannot be read (``faceset.readable``) are left out of the order and keep their names: renamed, they
would look sorted; after a sort they follow the ranked faces in name order.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from facelab.errors import FacelabError, FacesetError
from facelab.faceset.index import SORT_TMP_DIR, load_metas, rename_in_cache
from facelab.faceset.meta import FaceMeta
from facelab.faceset.readable import face_pixels, no_readable_faces, readable_faces
from facelab.io.atomic import ensure_writable_dir, write_atomic

log = logging.getLogger(__name__)

SORT_KEYS: dict[str, Callable[[FaceMeta], float]] = {  # all sorted descending, ties kept in name order
    "blur": lambda m: m.blur,  # sharpest first
    "yaw": lambda m: m.yaw,
    "pitch": lambda m: m.pitch,
    "size": lambda m: (m.source_rect[2] - m.source_rect[0]) * (m.source_rect[3] - m.source_rect[1]),
}
SORTS = (*SORT_KEYS, "hist", "identity")
HIST_SIDE = 128
_RANK = re.compile(r"^\d{5,}_")

T = TypeVar("T")
R = TypeVar("R")


def sort_faceset(
    folder: str | Path, by: str, photo: str | Path | None = None, unreadable: list[Path] | None = None
) -> list[Path]:
    """The readable faces of ``folder`` in the order of criterion ``by`` (see ``SORTS``); nothing is renamed here.
    Faces that cannot be read are left out (warned about, and appended to ``unreadable`` when given)."""
    check_sort(by, photo)
    unreadable = [] if unreadable is None else unreadable
    return order_faces(readable_faces(folder, unreadable), by, photo, unreadable)


def check_sort(by: str, photo: str | Path | None) -> None:
    if by not in SORTS:
        raise FacelabError(f"unknown sort {by!r} (one of: {', '.join(SORTS)})")
    if by == "identity" and not photo:
        raise FacelabError("--by identity needs --photo PHOTO (a picture of the person to rank first)")


def order_faces(
    faces: Sequence[tuple[Path, FaceMeta]], by: str, photo: str | Path | None, unreadable: list[Path]
) -> list[Path]:
    """``faces`` in the order of ``by``; for the sorts that read pixels, the faces whose pixels do not decode are
    left out and appended to ``unreadable``."""
    if by in SORT_KEYS:
        key = SORT_KEYS[by]
        return [p for p, _ in sorted(faces, key=lambda f: key(f[1]), reverse=True)]  # reverse keeps ties stable
    paths = [p for p, _ in faces]
    if by == "hist":
        hists = color_histograms(paths, unreadable)
        kept = np.flatnonzero(~np.isnan(hists).any(axis=(1, 2)))
        order = [paths[kept[i]] for i in hist_chain(hists[kept])]
    else:
        assert photo is not None
        dist = identity_distances(faces, photo, unreadable)
        order = [paths[i] for i in np.argsort(dist, kind="stable") if not np.isnan(dist[i])]
    if paths and not order:
        raise no_readable_faces(paths[0].parent, unreadable)
    return order


# --- histogram chain ---------------------------------------------------------------------------------------------


def color_histograms(paths: Sequence[Path], unreadable: list[Path] | None = None) -> np.ndarray:
    """(N, 3, 256) per-channel histograms of each whole face image resized to 128 px (DFL's ``hist`` input); NaN
    for a face whose pixels cannot be read (appended to ``unreadable`` when given)."""
    failed: list[Path] = [] if unreadable is None else unreadable

    def hist(p: Path) -> np.ndarray:
        img = face_pixels(p, failed, side=HIST_SIDE)
        if img is None:
            return np.full((3, 256), np.nan, dtype=np.float32)
        return np.stack([cv2.calcHist([img], [c], None, [256], [0, 256]).ravel() for c in range(3)])

    return np.stack(thread_map(hist, paths)).astype(np.float32)


def hist_chain(hists: np.ndarray) -> list[int]:
    """Greedy nearest-neighbour chain from face 0: each next face is the unvisited one closest to the current
    (lowest index on ties). O(N^2) like DFL's, but one matrix-vector product per step instead of N compareHist calls."""
    n = len(hists)
    if n == 0:
        return []
    roots = _hist_roots(hists)
    rows = np.arange(n)  # original index of each row still in ``roots``
    live = np.ones(n, dtype=bool)
    live[0] = False
    n_live, chain, cur = n - 1, [0], roots[:, 0, :].copy()
    while n_live:
        if 2 * n_live < len(rows):  # drop visited rows now and then: each step then scans less memory
            roots, rows, live = np.ascontiguousarray(roots[:, live]), rows[live], np.ones(n_live, dtype=bool)
        d = _bhatt_to(roots, cur)
        d[~live] = np.inf
        k = int(np.argmin(d))  # rows stay in index order, so ties go to name order
        live[k] = False
        n_live -= 1
        chain.append(int(rows[k]))
        cur = roots[:, k, :].copy()
    return chain


def _hist_roots(hists: np.ndarray) -> np.ndarray:
    """(3, N, 256) square roots of the normalised histograms: Bhattacharyya coefficients become dot products."""
    h = np.asarray(hists, dtype=np.float64)
    sums = h.sum(-1, keepdims=True)
    p = h / np.where(sums > 0, sums, 1.0)
    return np.ascontiguousarray(np.sqrt(p).transpose(1, 0, 2)).astype(np.float32)


def _bhatt_to(roots: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """(N,) summed distances of all rows of ``roots`` (3, N, 256) to one face's roots ``cur`` (3, 256)."""
    # einsum's own loop, not BLAS: multi-threaded BLAS gemv stalls badly when the cores are busy elsewhere
    bc = np.einsum("cnk,ck->cn", roots, cur)  # (3, N) Bhattacharyya coefficients
    return np.sqrt(np.clip(1.0 - bc, 0.0, None)).sum(0)


# --- identity ----------------------------------------------------------------------------------------------------


def identity_distances(
    faces: Sequence[tuple[Path, FaceMeta]], photo: str | Path, unreadable: list[Path] | None = None
) -> np.ndarray:
    """dlib descriptor distance of each face to the (largest) face in ``photo``; < 0.6 is the same person. NaN for
    a face whose pixels cannot be read (appended to ``unreadable`` when given)."""
    from facelab.faces.finder import FaceFinder
    from facelab.faces.identity import FaceDescriber
    from facelab.io.media import read_image

    img = read_image(photo)
    finder = FaceFinder()
    try:
        found = finder.find(img)
    finally:
        finder.close()
    if not found:
        raise FacelabError(f"{photo}: no face found in the --photo reference")
    describer = FaceDescriber()
    ref = describer.describe(img, found[0].points)
    failed: list[Path] = [] if unreadable is None else unreadable

    def distance(p: Path, m: FaceMeta) -> float:
        bgr = face_pixels(p, failed)
        if bgr is None:
            return float("nan")
        # the aligned crop's own landmarks: no detection on faceset faces, so profile or tiny faces get a score
        return float(np.linalg.norm(describer.describe(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), m.landmarks) - ref))

    return np.array([distance(p, m) for p, m in faces])


# --- applying an order -------------------------------------------------------------------------------------------


def apply_order(
    folder: str | Path,
    order: Sequence[str | Path],
    order_file: str | Path | None = None,
    stems: dict[str, str] | None = None,
) -> None:
    """Rename the faces to ``{rank:05d}_{name}`` in ``order``, or only write the names to ``order_file``.

    Renaming goes through a hidden subfolder (two phases), so a target name held by another face never clobbers
    it; an interrupted run is finished by the next one. Nothing is ever deleted, and a file not in ``order``
    keeps its name. ``stems``: face name -> its source's stem (see ``strip_rank``), if the caller has the metas.
    """
    folder = Path(folder)
    names = [Path(p).name for p in order]
    if order_file is not None:
        write_atomic(Path(order_file), "".join(n + "\n" for n in names).encode("utf-8"))
        return
    if len(set(names)) != len(names):
        raise FacelabError("the sort order lists a face twice")
    finish_interrupted_sort(folder)
    stems = source_stems(load_metas(folder)) if stems is None else stems
    width = max(5, len(str(len(names) - 1)))
    targets = {n: f"{rank:0{width}d}_{strip_rank(n, stems.get(n))}" for rank, n in enumerate(names)}
    moving = {n: t for n, t in targets.items() if n != t}
    for n, t in moving.items():
        if not (folder / n).is_file():
            raise FacesetError(f"{folder / n}: no such face (folder changed during the sort?)")
        if t not in targets and (folder / t).exists():  # held by a file outside the order: never overwrite it
            raise FacesetError(f"{folder / t}: exists and is not part of the sort; move it away first")
    tmp = folder / SORT_TMP_DIR
    try:
        tmp.mkdir()
        for n, t in moving.items():
            _rename_no_clobber(folder / n, tmp / t)
    except OSError as e:
        finish_interrupted_sort(folder)  # whatever moved so far goes to its final name
        raise FacesetError(f"{folder}: sort stopped, cannot rename ({e.strerror or e})") from e
    finish_interrupted_sort(folder)
    rename_in_cache(folder, moving)


def source_stems(faces: Sequence[tuple[Path, FaceMeta]]) -> dict[str, str]:
    return {p.name: Path(m.source_file).stem for p, m in faces}


def strip_rank(name: str, source_stem: str | None = None) -> str:
    """``name`` without the ``NNNNN_`` rank prefix of an earlier sort.

    ``source_stem`` (the stem of the face's source image or video) tells a rank prefix from a name that really
    starts with digits: faces of frame ``00001.png`` are named ``00001_0.jpg`` and keep that name.
    """
    m = _RANK.match(name)
    if m is None:
        return name
    rest = name[m.end() :]
    if source_stem and not rest.startswith(source_stem + "_") and name.startswith(source_stem + "_"):
        return name
    return rest


def finish_interrupted_sort(folder: str | Path) -> None:
    """Move faces parked in the hidden sort folder to their final names (the second phase of ``apply_order``)."""
    folder = Path(folder)
    tmp = folder / SORT_TMP_DIR
    if not tmp.is_dir():
        return
    for p in sorted(tmp.iterdir()):
        try:
            _rename_no_clobber(p, folder / p.name)
        except OSError as e:
            raise FacesetError(f"{p}: cannot move back into {folder} ({e.strerror or e}); move it by hand") from e
    with contextlib.suppress(OSError):
        tmp.rmdir()


def _rename_no_clobber(src: Path, dst: Path) -> None:
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, "target exists", str(dst))
    os.rename(src, dst)


# --- filter and trash --------------------------------------------------------------------------------------------


def filter_faceset(
    folder: str | Path,
    yaw: tuple[float, float] | None = None,
    pitch: tuple[float, float] | None = None,
    min_blur: float | None = None,
    unreadable: list[Path] | None = None,
) -> list[Path]:
    """The faces to reject: yaw or pitch outside the inclusive (min, max) degrees, or sharpness below ``min_blur``.
    Faces that cannot be read are neither kept nor rejected: they are warned about and appended to
    ``unreadable`` (when given)."""
    if yaw is None and pitch is None and min_blur is None:
        raise FacelabError("nothing to filter by: give --yaw, --pitch and/or --min-blur")
    for what, rng in (("yaw", yaw), ("pitch", pitch)):
        if rng is not None and rng[0] > rng[1]:
            raise FacelabError(f"--{what} {rng[0]:g} {rng[1]:g}: MIN is above MAX")
    faces = readable_faces(folder, [] if unreadable is None else unreadable)
    return [p for p, m in faces if not keeps(m, yaw, pitch, min_blur)]


def keeps(
    m: FaceMeta, yaw: tuple[float, float] | None, pitch: tuple[float, float] | None, min_blur: float | None
) -> bool:
    return (
        (yaw is None or yaw[0] <= m.yaw <= yaw[1])
        and (pitch is None or pitch[0] <= m.pitch <= pitch[1])
        and (min_blur is None or m.blur >= min_blur)
    )


def move_to_trash(paths: Iterable[str | Path], trash_dir: str | Path) -> list[Path]:
    """Move faces into ``trash_dir`` (created if needed), never overwriting a file there; returns the new paths."""
    trash = ensure_writable_dir(trash_dir, "--trash")
    moved = []
    for p in map(Path, paths):
        dst = free_name(trash / p.name)
        try:
            try:
                os.replace(p, dst)
            except OSError as e:
                if e.errno != errno.EXDEV:
                    raise
                shutil.move(p, dst)  # another filesystem: copy, then remove the original
        except OSError as e:
            raise FacesetError(f"{p}: cannot move to {trash} ({e.strerror or e})") from e
        moved.append(dst)
    return moved


def free_name(path: Path) -> Path:
    """``path``, or ``stem~1.ext``, ``stem~2.ext``, ... : the first name not taken."""
    n, cand = 0, path
    while os.path.lexists(cand):
        n += 1
        cand = path.with_name(f"{path.stem}~{n}{path.suffix}")
    return cand


# --- threads -----------------------------------------------------------------------------------------------------


def thread_map(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``list(map(fn, items))`` on a few threads: JPEG decoding in OpenCV releases the GIL."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as ex:
        return list(ex.map(fn, items))
