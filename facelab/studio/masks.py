"""The mask editor: draw include and exclude polygons on one face, as DFL's XSeg editor does, and save them into the
face's metadata (``FaceMeta.masks``, the labels ``facelab mask train`` reads), with the face's stored mask (``mask
apply``) as an overlay.

The page is ``/masks/<face path>?<the grid's sort and filters>``: next/previous face follow the grid's order.
Polygons are ``{"type": "include"|"exclude", "points": [[x, y], ...]}`` in aligned-image pixels; includes are filled
first, then excludes (an exclude wins). A save rewrites only the metadata (``faceset.store.update_meta``, the writer
of ``mask apply``): atomic, the image bytes kept.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel

from facelab.errors import FacelabError
from facelab.faceset.meta import FaceMeta
from facelab.faceset.store import update_meta
from facelab.studio.facesets import face_file, grid_query, grid_rows
from facelab.studio.listing import GridQuery, read_face_meta
from facelab.studio.security import StudioError, relative_name
from facelab.studio.web import Studio, render, short_message, studio

router = APIRouter()
NAV: tuple[tuple[str, str], ...] = ()  # opened from a face (the grid's face panel), not from the header
POLY_TYPES = ("include", "exclude")
MAX_POLYGONS = 256
MAX_POINTS = 4096  # per polygon
DECIMALS = 2  # coordinates are stored to 1/100 px


def setup(s: Studio) -> None:
    """Nothing to keep: the faces' polygons live in their files."""


def warm(s: Studio) -> None:
    s.templates.get_template("mask_editor.html")


class MasksRequest(BaseModel):
    face: str  # its path in the workspace
    masks: list[Any]  # checked by ``valid_polygons``, for one-line errors


# --- pages and API -----------------------------------------------------------------------------------------------


@router.get("/masks/{rel:path}")
def editor_page(request: Request, rel: str) -> Response:
    s = studio(request)
    path, rel = face_file(s, rel)
    faceset = relative_name(s.root, path.parent)
    return render(request, "mask_editor.html", face=rel, name=path.name, faceset=faceset)


@router.get("/api/masks")
def api_masks(request: Request, face: str) -> dict[str, Any]:
    """A face's polygons, its image size and whether it has a stored mask (the overlay, at ``/xseg/<face>``)."""
    s = studio(request)
    path, rel = face_file(s, face)
    meta = _meta(s, path, rel)
    width, height = image_size(path, rel)
    st = path.stat()
    return {
        "face": rel,
        "name": path.name,
        "faceset": relative_name(s.root, path.parent),
        "width": width,
        "height": height,
        "masks": meta.masks,
        "has_xseg": bool(meta.xseg_mask),
        "version": f"{st.st_size:x}-{st.st_mtime_ns:x}",
    }


@router.post("/api/masks")
def api_save_masks(request: Request, body: MasksRequest) -> dict[str, Any]:
    """Replace a face's polygons: checked first (nothing is written when any is wrong), then only the metadata is
    rewritten, atomically."""
    s = studio(request)
    path, rel = face_file(s, body.face)
    _meta(s, path, rel)  # a broken face: refused before its polygons are looked at
    width, height = image_size(path, rel)
    masks = valid_polygons(body.masks, width, height, rel)
    try:
        update_meta(path, masks=masks)  # a DFL face (read converted, no facelab metadata) is refused here
    except FacelabError as e:
        raise StudioError(short_message(s, str(e)), 422) from e
    return {"face": rel, "masks": masks, "saved": len(masks)}


@router.get("/api/masks/neighbors")
def api_neighbors(request: Request, face: str, q: Annotated[GridQuery, Depends(grid_query)]) -> dict[str, Any]:
    """The faces before and after ``face`` in its grid's order (the grid's sort and filters in the query string),
    broken ones left out: paths in the workspace, or None at either end."""
    s = studio(request)
    path, rel = face_file(s, face)
    rows, _, faceset = grid_rows(s, relative_name(s.root, path.parent), q)
    names = [r.name for r in rows if r.why is None]
    at = names.index(path.name) if path.name in names else -1

    def rel_of(i: int) -> str | None:
        if not 0 <= i < len(names):
            return None
        return f"{faceset}/{names[i]}" if faceset else names[i]

    return {
        "face": rel,
        "index": at,
        "count": len(names),
        "prev": rel_of(at - 1) if at >= 0 else None,
        "next": rel_of(at + 1) if at >= 0 else rel_of(0),
    }


# --- checks ------------------------------------------------------------------------------------------------------


def valid_polygons(raw: list[Any], width: int, height: int, where: str = "masks") -> list[dict[str, Any]]:
    """``raw`` as the polygons to store, or StudioError (422) naming the first thing wrong: each an object with a
    ``type`` of include/exclude and ``points``, at least 3 [x, y] pairs of finite numbers inside the image."""
    if len(raw) > MAX_POLYGONS:
        raise StudioError(f"{where}: {len(raw)} polygons, at most {MAX_POLYGONS}", 422)
    out = []
    for i, poly in enumerate(raw):
        at = f"{where}: polygon {i + 1}"
        if not isinstance(poly, dict):
            raise StudioError(f"{at}: not an object with 'type' and 'points'", 422)
        kind, points = poly.get("type"), poly.get("points")
        if kind not in POLY_TYPES:
            raise StudioError(f"{at}: type {kind!r}: one of include, exclude", 422)
        if not isinstance(points, list) or len(points) < 3:
            n = len(points) if isinstance(points, list) else "no"
            raise StudioError(f"{at}: {n} points, a polygon needs at least 3", 422)
        if len(points) > MAX_POINTS:
            raise StudioError(f"{at}: {len(points)} points, at most {MAX_POINTS}", 422)
        out.append(
            {"type": kind, "points": [_point(p, width, height, f"{at}, point {j + 1}") for j, p in enumerate(points)]}
        )
    return out


def _point(p: Any, width: int, height: int, at: str) -> list[float]:
    if not (isinstance(p, list | tuple) and len(p) == 2 and all(_is_number(v) for v in p)):
        raise StudioError(f"{at}: {p!r} is not an [x, y] pair of numbers", 422)
    x, y = float(p[0]), float(p[1])
    if not (math.isfinite(x) and math.isfinite(y)):
        raise StudioError(f"{at}: ({x}, {y}) is not a finite point", 422)
    if not (0 <= x <= width and 0 <= y <= height):
        raise StudioError(f"{at}: ({x:g}, {y:g}) lies outside the {width}x{height} image", 422)
    return [round(x, DECIMALS), round(y, DECIMALS)]


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


# --- helpers -----------------------------------------------------------------------------------------------------


def image_size(path: Path, rel: str) -> tuple[int, int]:
    """(width, height) of a face image from its header (no decode)."""
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise StudioError(f"{rel}: face image data is corrupt ({e})", 422) from e


def _meta(s: Studio, path: Path, rel: str) -> FaceMeta:
    meta, why = read_face_meta(path)
    if meta is None:
        raise StudioError(f"{rel}: {short_message(s, why or 'unreadable')}", 422)
    return meta
