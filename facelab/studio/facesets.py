"""Facesets pages: the workspace's facesets (home), a faceset's grid with its face panel, and the trash.

Pages are thin HTML shells; ``static/grid.js`` asks ``/api/faces`` for the listing (sorted and filtered here, by
the faceset tools' own keys) and draws only the tiles on screen, whose thumbnails come from ``/thumb/...``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel

from facelab.errors import FacelabError
from facelab.faceset.store import FACE_EXTS
from facelab.studio.listing import (
    DB_NAME,
    GRID_SORTS,
    FaceIndex,
    FaceRow,
    GridQuery,
    PixelOrders,
    find_facesets,
    folder_key,
    grid_view,
    read_face_meta,
    view_json,
)
from facelab.studio.security import StudioError, relative_name, resolve_inside
from facelab.studio.thumbs import cached_thumbnail, thumbnail
from facelab.studio.trash import TRASH_DIR, list_trash, rel_join, restore_faces, trash_faces
from facelab.studio.web import Studio, event_stream, render, short_message, studio

router = APIRouter()
NAV = (("Facesets", "/"), ("Trash", "/trash"))
TRASH_SHOWN = 200  # thumbnails per batch on the trash page
IMMUTABLE = {"Cache-Control": "private, max-age=31536000, immutable"}  # URLs that carry the file's version


def setup(s: Studio) -> None:
    """Called once by ``create_app``: this module's caches."""
    s.services["faces"] = FaceIndex(s.data_dir / DB_NAME)
    s.services["orders"] = PixelOrders()


def warm(s: Studio) -> None:
    """Called by ``serve`` on a thread at start: compile the templates and list every faceset into the face index,
    so the first page is as quick as the next (and a new faceset is indexed before it is opened)."""
    for name in ("home.html", "grid.html", "trash.html", "error.html"):
        s.templates.get_template(name)
    for f in find_facesets(s.root):
        if s.stopping.is_set():
            return
        with contextlib.suppress(FacelabError):
            _index(s).rows(*faceset_folder(s, f.rel))


class TrashRequest(BaseModel):
    faceset: str
    names: list[str]


class RestoreRequest(BaseModel):
    faceset: str
    batch: str
    names: list[str] | None = None  # None: the whole batch


# --- pages -------------------------------------------------------------------------------------------------------


@router.get("/")
def home(request: Request) -> Response:
    s = studio(request)
    trashed = sum(len(b.names) for b in list_trash(_trash_root(s)))
    return render(request, "home.html", facesets=find_facesets(s.root), trashed=trashed)


@router.get("/faceset/{rel:path}")
def grid_page(request: Request, rel: str) -> Response:
    s = studio(request)
    folder, rel = faceset_folder(s, rel)
    return render(request, "grid.html", faceset=rel, name=folder.name, sorts=GRID_SORTS)


@router.get("/trash")
def trash_page(request: Request, faceset: str | None = None) -> Response:
    s = studio(request)
    rel = None if faceset is None else faceset_folder(s, faceset)[1]
    batches = list_trash(_trash_root(s), rel)
    return render(request, "trash.html", batches=batches, faceset=rel, shown=TRASH_SHOWN, rel_join=rel_join)


# --- API ---------------------------------------------------------------------------------------------------------


def grid_query(
    request: Request,
    sort: str = "name",
    reverse: bool = False,
    yaw_min: float | None = None,
    yaw_max: float | None = None,
    pitch_min: float | None = None,
    pitch_max: float | None = None,
    min_blur: float | None = None,
    synthetic: str = "all",
    photo: str | None = None,
) -> GridQuery:
    """A grid's sort and filters from the query string (the grid's own, which the mask editor carries too)."""
    if synthetic not in ("all", "real", "synthetic"):
        raise StudioError(f"synthetic={synthetic!r}: one of all, real, synthetic", 400)
    if sort == "identity" and not photo:
        raise StudioError("sort 'identity' needs a reference photo: its path in the workspace", 400)
    return GridQuery(
        sort=sort,
        reverse=reverse,
        yaw=_range("yaw", yaw_min, yaw_max),
        pitch=_range("pitch", pitch_min, pitch_max),
        min_blur=min_blur,
        synthetic=synthetic,
        photo=resolve_inside(studio(request).root, photo) if photo else None,
    )


def grid_rows(s: Studio, faceset: str, q: GridQuery) -> tuple[list[FaceRow], int, str]:
    """(the rows the grid of ``faceset`` shows for ``q``, in order; how many faces it has; its canonical path)."""
    folder, rel = faceset_folder(s, faceset)
    rows = _index(s).rows(folder, rel)
    return grid_view(folder, rows, q, s.services["orders"], rel), len(rows), rel  # an unknown sort: 400


@router.get("/api/faces")
def api_faces(request: Request, faceset: str, q: Annotated[GridQuery, Depends(grid_query)]) -> dict[str, Any]:
    """The grid's listing: every image of the faceset that passes the filters, in the chosen order, broken last."""
    shown, total, rel = grid_rows(studio(request), faceset, q)
    return {"faceset": rel, **view_json(shown, total, q.sort)}


@router.get("/api/face")
def api_face(request: Request, faceset: str, name: str) -> dict[str, Any]:
    """One face's metadata for the face panel (landmarks and masks in aligned pixels), or why it is broken."""
    s = studio(request)
    path, rel = face_file(s, rel_join(faceset, name))
    meta, why = read_face_meta(path)
    info: dict[str, Any] = {"name": path.name, "path": rel, "bytes": path.stat().st_size, "broken": why}
    if why is not None:
        info["broken"] = short_message(s, why)
        return info
    assert meta is not None
    d = meta.to_dict()
    d["mesh_points"] = 0 if meta.mesh is None else len(meta.mesh)
    d["has_xseg"] = bool(meta.xseg_mask)
    for big in ("mesh", "xseg_mask", "source_landmarks"):
        d.pop(big, None)
    return {**info, "meta": d}


@router.post("/api/trash")
def api_trash(request: Request, body: TrashRequest) -> dict[str, Any]:
    s = studio(request)
    folder, rel = faceset_folder(s, body.faceset)
    b = trash_faces(_trash_root(s), folder, rel, body.names)
    _index(s).forget(rel)
    return {"faceset": b.faceset, "batch": b.batch, "names": b.names}


@router.post("/api/restore")
def api_restore(request: Request, body: RestoreRequest) -> dict[str, Any]:
    s = studio(request)
    folder, rel = faceset_folder(s, body.faceset)
    restored = restore_faces(_trash_root(s), folder, rel, body.batch, body.names)
    _index(s).forget(rel)
    return {"faceset": rel, "batch": body.batch, "restored": restored}


@router.get("/api/trash")
def api_trash_list(request: Request, faceset: str | None = None) -> dict[str, Any]:
    s = studio(request)
    rel = None if faceset is None else faceset_folder(s, faceset)[1]
    return {"batches": [b.__dict__ for b in list_trash(_trash_root(s), rel)]}


@router.get("/api/events")
async def api_events(request: Request, faceset: str) -> Response:
    """``changed`` whenever the faceset folder changes on disk (a CLI sort, an extraction, another window)."""
    folder, _ = faceset_folder(studio(request), faceset)
    return await event_stream(request, lambda: "-".join(map(str, folder_key(folder))))


# --- files -------------------------------------------------------------------------------------------------------


@router.get("/thumb/{rel:path}")
async def thumb(request: Request, rel: str, v: str | None = None) -> Response:
    """A grid tile's image. A cached one is answered on the event loop (a few small file reads): a first screen
    asks for ~90 at once, and a thread hop each would cost more than the read."""
    s = studio(request)
    path, rel = face_file(s, rel)
    cache = s.data_dir / "thumbs"
    data = cached_thumbnail(cache, path, rel) or await run_in_threadpool(thumbnail, cache, path, rel)
    return Response(data, media_type="image/jpeg", headers=IMMUTABLE if v else {"Cache-Control": "no-cache"})


@router.get("/trash-thumb/{rel:path}")
def trash_thumb(request: Request, rel: str) -> Response:
    s = studio(request)
    path = resolve_inside(_trash_root(s), rel)  # inside the trash, so inside the workspace
    if not path.is_file():
        raise StudioError(f"{rel}: not a file in the trash", 404)
    return Response(thumbnail(s.data_dir / "thumbs", path, f"{TRASH_DIR}/{rel}"), media_type="image/jpeg")


@router.get("/file/{rel:path}")
def face_image(request: Request, rel: str) -> Response:
    path, _ = face_file(studio(request), rel)
    return FileResponse(path, headers={"Cache-Control": "no-cache"})


@router.get("/xseg/{rel:path}")
def xseg_mask(request: Request, rel: str) -> Response:
    """The face's stored mask (``mask apply``), a gray PNG of the whole aligned image."""
    s = studio(request)
    path, rel = face_file(s, rel)
    meta, why = read_face_meta(path)
    if meta is None or not meta.xseg_mask:
        raise StudioError(f"{rel}: {short_message(s, why) if why else 'no stored mask'}", 404)
    try:
        png = base64.b64decode(meta.xseg_mask, validate=True)
    except (binascii.Error, ValueError) as e:
        raise StudioError(f"{rel}: the stored mask is not base64", 422) from e
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-cache"})


# --- helpers -----------------------------------------------------------------------------------------------------


def faceset_folder(s: Studio, rel: str) -> tuple[Path, str]:
    """The folder of faceset ``rel`` ('' = the workspace itself) and its canonical path in the workspace."""
    folder = s.root if rel in ("", ".") else resolve_inside(s.root, rel.strip("/"))
    if not folder.is_dir():
        raise StudioError(f"{rel}: not a faceset folder", 404)
    return folder, relative_name(s.root, folder)


def face_file(s: Studio, rel: str) -> tuple[Path, str]:
    """A face image of the workspace (any image file; only images are served) and its canonical path."""
    path = resolve_inside(s.root, rel)
    if not path.is_file() or path.suffix.lower() not in FACE_EXTS:
        raise StudioError(f"{rel}: not a face image", 404)
    return path, relative_name(s.root, path)


def _index(s: Studio) -> FaceIndex:
    return s.services["faces"]


def _trash_root(s: Studio) -> Path:
    return s.data_dir / TRASH_DIR


def _range(what: str, lo: float | None, hi: float | None) -> tuple[float, float] | None:
    if lo is None and hi is None:
        return None
    lo, hi = -1e9 if lo is None else lo, 1e9 if hi is None else hi
    if lo > hi:
        raise StudioError(f"{what} {lo:g}..{hi:g}: the minimum is above the maximum", 400)
    return lo, hi
