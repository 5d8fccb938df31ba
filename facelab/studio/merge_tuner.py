"""Merge tuner page: scrub a dst video, see each frame merged under the current settings, give frame ranges their
own settings and save them as a merge settings file (``merge/settings.py``) that ``facelab merge --settings``
applies: the page's frame is ``FrameRenderer``'s, which is the merge's own per-frame code (bit for bit).

A renderer (decoder, faces, model and its cached predictions) is kept per (dst, faceset, model, mask model), two at
most; a settings change re-renders from the cached prediction, without the model. The mask model (optional, from
``facelab mask train``) is what the xseg-prd mask modes need, as ``merge --mask-model``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from facelab.config import MergeConfig
from facelab.errors import FacelabError
from facelab.imaging.color import CT_MODES
from facelab.io.atomic import write_atomic
from facelab.merge.blend import MASK_MODES, SHARPEN_MODES
from facelab.merge.frame import FrameRenderer
from facelab.merge.settings import (
    BLEND_MODES,
    BOUNDS,
    FORMAT,
    PER_FRAME,
    MergeSettings,
    check_values,
    load_settings,
    parse_settings,
)
from facelab.studio.listing import find_facesets, find_models, find_videos
from facelab.studio.security import StudioError, is_plain_name, relative_name, resolve_inside
from facelab.studio.web import Studio, render, short_message, studio

router = APIRouter()
NAV = (("Merge tuner", "/merge"),)
RENDERERS = 2  # open (dst, faceset, model) renderers kept; each holds a model and its predictions
PNG_LEVEL = 1  # fast PNG: the frame is shown losslessly (what merge writes), so no JPEG here


def setup(s: Studio) -> None:
    s.services["merge"] = Renderers()


def warm(s: Studio) -> None:
    s.templates.get_template("merge_tuner.html")


class Renderers:
    """The open FrameRenderers, newest last; at most ``RENDERERS``."""

    def __init__(self) -> None:
        self._open: OrderedDict[tuple[str, ...], FrameRenderer] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, s: Studio, dst: str, faceset: str, model: str, mask_model: str = "") -> FrameRenderer:
        paths = (inside(s, dst, "dst"), inside(s, faceset, "faceset"), inside(s, model, "model"))
        masks = inside(s, mask_model, "mask model") if mask_model else None
        key = tuple(relative_name(s.root, p) for p in (*paths, *([masks] if masks else [])))
        with self._lock:
            r = self._open.get(key)
            if r is None:
                run = MergeConfig(mask_model=str(masks)) if masks else None
                r = FrameRenderer(paths[0], model_dir=paths[2], faceset=paths[1], run=run)
                self._open[key] = r
                while len(self._open) > RENDERERS:
                    _, old = self._open.popitem(last=False)
                    old.frames.close()
            self._open.move_to_end(key)
            return r


class OpenRequest(BaseModel):
    dst: str
    faceset: str
    model: str
    mask_model: str = ""  # optional: a mask model folder, for the xseg-prd mask modes


class RangeBody(BaseModel):
    start: int
    end: int
    settings: dict[str, Any]


class SaveRequest(BaseModel):
    dst: str
    faceset: str
    model: str
    path: str  # a .json file in the workspace
    mask_model: str = ""
    base: dict[str, Any]
    ranges: list[RangeBody]


# --- page --------------------------------------------------------------------------------------------------------


@router.get("/merge")
def tuner_page(request: Request) -> Response:
    s = studio(request)
    return render(
        request,
        "merge_tuner.html",
        videos=find_videos(s.root),
        facesets=[f.rel or "." for f in find_facesets(s.root)],
        models=find_models(s.root),
        controls=controls(),
    )


def controls() -> list[dict[str, Any]]:
    """The per-frame settings as the page shows them: name, kind, choices or bounds, default."""
    default = MergeConfig()
    choices = {"mask_mode": MASK_MODES, "color": CT_MODES, "blend": BLEND_MODES, "sharpen": SHARPEN_MODES}
    out = []
    for name in PER_FRAME:
        c: dict[str, Any] = {"name": name, "default": getattr(default, name)}
        if name in choices:
            c["choices"] = list(choices[name])
        else:
            c["min"], c["max"] = BOUNDS[name]
        out.append(c)
    return out


# --- API ---------------------------------------------------------------------------------------------------------


@router.post("/api/merge/open")
def api_open(request: Request, body: OpenRequest) -> dict[str, Any]:
    """Load (or reuse) the renderer of a dst, its faceset and a model: frame count, size, model resolution."""
    s = studio(request)
    r = _renderer(s, body.dst, body.faceset, body.model, body.mask_model)
    h, w = r.frames[0].shape[:2]
    return {
        "frames": len(r),
        "width": w,
        "height": h,
        "res": r.res,
        "model_id": r.model_id,
        "base": {k: v for k, v in asdict(MergeConfig()).items() if k in PER_FRAME},
    }


@router.get("/api/merge/frame")
def api_frame(
    request: Request, dst: str, faceset: str, model: str, frame: int, settings: str = "{}", mask_model: str = ""
) -> Response:
    """Frame ``frame`` merged with ``settings`` (a JSON object of per-frame settings), as a PNG; the header
    ``X-Render-Ms`` says how long the render took and ``X-Predicted`` whether the model ran."""
    s = studio(request)
    try:
        values = json.loads(settings)
    except json.JSONDecodeError as e:
        raise StudioError(f"settings: not JSON ({e.msg})", 422) from e
    values = check_values(values, "settings", lambda msg: StudioError(msg, 422))
    r = _renderer(s, dst, faceset, model, mask_model)
    if not 0 <= frame < len(r):
        raise StudioError(f"frame {frame}: {dst} has frames 0..{len(r) - 1}", 404)
    cached = r.predicted(frame)
    t0 = time.perf_counter()
    try:
        image = r.render(frame, MergeConfig(**values))
    except FacelabError as e:
        raise StudioError(short_message(s, str(e)), 400) from e
    ms = (time.perf_counter() - t0) * 1000
    ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL])
    if not ok:
        raise StudioError(f"frame {frame}: could not encode it", 500)
    headers = {"Cache-Control": "no-store", "X-Render-Ms": f"{ms:.1f}", "X-Predicted": "0" if cached else "1"}
    return Response(png.tobytes(), media_type="image/png", headers=headers)


@router.get("/api/merge/settings")
def api_settings(request: Request, path: str) -> dict[str, Any]:
    """A saved settings file of the workspace (to go on tuning it)."""
    s = studio(request)
    p = inside(s, path, "settings file")
    return _load(s, p).to_json()


@router.post("/api/merge/save")
def api_save(request: Request, body: SaveRequest) -> dict[str, Any]:
    """Write the settings file ``body.path`` (a new file, or one this page saved before), checked as
    ``merge --settings`` checks it."""
    s = studio(request)
    target = save_target(s, body.path)
    source = {"dst": body.dst, "faceset": body.faceset, "model": body.model}
    if body.mask_model:
        source["mask_model"] = body.mask_model
    for what, rel in source.items():
        inside(s, rel, what)
    data = {"format": FORMAT, "base": body.base, "ranges": [r.model_dump() for r in body.ranges], "source": source}
    settings = parse_settings(data, body.path)
    if target.exists():
        _load(s, target)  # only a settings file may be replaced
    write_atomic(target, settings.dumps().encode())
    rel = relative_name(s.root, target)
    masks = f" --mask-model {body.mask_model}" if body.mask_model else ""
    command = (
        f"facelab merge {body.dst} --model {body.model} --faceset {body.faceset}{masks} --settings {rel} -o OUT.mp4"
    )
    return {"path": rel, "ranges": len(settings.ranges), "command": command}


# --- helpers -----------------------------------------------------------------------------------------------------


def inside(s: Studio, rel: str, what: str) -> Path:
    """An existing path of the workspace (``resolve_inside``'s rules); the request names it ``what``."""
    if not rel or rel in (".",):
        raise StudioError(f"{what}: give a path inside the workspace", 400)
    return resolve_inside(s.root, rel.strip("/"))


def save_target(s: Studio, rel: str) -> Path:
    """Where a settings file may be written: a visible ``.json`` name in an existing folder of the workspace."""
    rel = rel.strip()
    folder_rel, _, name = rel.rpartition("/")
    if not is_plain_name(name) or not name.lower().endswith(".json"):
        raise StudioError(f"{rel or 'path'}: save as a .json file name inside the workspace", 400)
    folder = s.root if not folder_rel else resolve_inside(s.root, folder_rel)
    if not folder.is_dir():
        raise StudioError(f"{folder_rel}: not a folder", 400)
    target = folder / name
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise StudioError(f"{rel}: not a plain file: refused", 403)
    return target


def _load(s: Studio, path: Path) -> MergeSettings:
    try:
        return load_settings(path)
    except FacelabError as e:
        raise StudioError(short_message(s, str(e)), 422) from e


def _renderer(s: Studio, dst: str, faceset: str, model: str, mask_model: str = "") -> FrameRenderer:
    try:
        return s.services["merge"].get(s, dst, faceset, model, mask_model)
    except StudioError:
        raise
    except FacelabError as e:
        raise StudioError(short_message(s, str(e)), 400) from e
