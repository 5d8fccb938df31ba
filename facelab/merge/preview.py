"""Tuning without a GUI: a contact sheet of chosen frames merged under every combination of some options."""

from __future__ import annotations

import itertools
from dataclasses import fields, replace
from pathlib import Path

import cv2
import numpy as np

from facelab.config import MergeConfig
from facelab.errors import FacelabError
from facelab.io.atomic import write_atomic
from facelab.io.media import frame_sequence, iter_frames, iter_sequence
from facelab.io.paths import refuse_overlap
from facelab.merge.pipeline import (
    DEFAULT_SEQUENCE_FPS,
    LiveFaces,
    Merger,
    PlannedFace,
    TorchPredictor,
    check_mask_sources,
    check_stored_xseg,
    faces_from_faceset,
    merge_inputs,
    merged_frames,
    uses_stored,
)
from facelab.models.load import load_model


def parse_grid(specs: list[str]) -> dict[str, list]:
    """``["color=rct,lct", "blur=10,40"]`` -> {"color": ["rct", "lct"], "blur": [10, 40]} typed by MergeConfig."""
    types = {f.name: type(getattr(MergeConfig(), f.name)) for f in fields(MergeConfig)}
    grid: dict[str, list] = {}
    for spec in specs:
        key, _, values = spec.partition("=")
        key = key.strip().replace("-", "_")
        if key not in types or not values:
            raise FacelabError(f"--grid {spec!r}: expected OPTION=V1,V2 with OPTION one of {', '.join(types)}")
        try:
            grid[key] = [types[key](v) for v in values.split(",")]
        except ValueError as e:
            raise FacelabError(f"--grid {spec!r}: {e}") from e
    return grid


def contact_sheet(
    dst_video: str | Path,
    model_dir: str | Path,
    frames: list[int],
    grid: dict[str, list],
    base: MergeConfig,
    out_png: str | Path,
    thumb: int = 320,
    faceset: str | Path | None = None,
) -> Path:
    """One row per option combination, one column per chosen frame (first column: the original). ``dst_video``
    may be a folder of frames (frame numbers are then places in its natural name order). With ``faceset`` the
    faces (and their stored mask polygons) come from the dst faceset, as in ``merge``; else they are found. A cell
    is what ``merge`` writes for that frame with those options (without motion blur: stills have no motion)."""
    refuse_overlap(merge_inputs(Path(dst_video), model_dir, faceset, base), {"-o": out_png})
    combos = [dict(zip(grid, vals)) for vals in itertools.product(*grid.values())] or [{}]
    cfgs = [replace(base, **c) for c in combos]
    if faceset is None and any(uses_stored(c.mask_mode) for c in cfgs):
        raise FacelabError("stored masks need --faceset (mask mode 'stored' uses the dst faceset's polygons)")
    for c in cfgs:
        check_mask_sources(c.mask_mode, c.mask_model, faceset)
    model, mcfg = load_model(model_dir)
    wanted = set(frames)
    dst = Path(dst_video)
    seq = frame_sequence(dst) if dst.is_dir() else None
    if seq is not None:  # a folder: decode only the chosen frames (the rate does not matter for stills)
        chosen = list(iter_sequence(seq, DEFAULT_SEQUENCE_FPS, wanted))
    else:  # decoding stops at the last chosen frame (faster; a damaged end of the video does not matter here)
        chosen = []
        for f in iter_frames(dst):
            if f.index in wanted:
                chosen.append(f)
                if len(chosen) == len(wanted):
                    break
    if not chosen:
        raise FacelabError(f"{dst_video}: none of the frames {sorted(wanted)} exist")
    if faceset is not None:
        names = [p.name for p in seq.paths] if seq is not None else None
        planned = faces_from_faceset(faceset, dst, None, None, names)
        faces = [planned.get(f.index, []) for f in chosen]
        for c in cfgs:
            check_stored_xseg(c.mask_mode, faceset, (x for fs in faces for x in fs))
    else:
        live = LiveFaces()
        faces = [[PlannedFace(x.points) for x in live.finder.find(f.image)] for f in chosen]  # stills: no smoothing
    rows = [_row([f.image for f in chosen], "original", thumb)]
    predictors: dict[str, TorchPredictor] = {}  # one per precision: a bf16 predictor holds its own model copy
    for combo, cfg in zip(combos, cfgs):
        # the merge's own per-frame path (crops from the dst frame, batched prediction, paste); stills: no motion
        if cfg.precision not in predictors:
            predictors[cfg.precision] = TorchPredictor(model, mcfg, cfg.precision)
        merger = Merger(predictors[cfg.precision], None, cfg)
        merged = merged_frames(zip(chosen, faces), merger, consecutive=False)
        rows.append(_row([m.image for m in merged], " ".join(f"{k}={v}" for k, v in combo.items()) or "default", thumb))
    sheet = np.concatenate(rows, axis=0)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise FacelabError(f"{out_png}: could not encode the contact sheet")
    write_atomic(out_png, buf.tobytes())
    return Path(out_png)


def _row(images: list[np.ndarray], label: str, thumb: int) -> np.ndarray:
    tiles = []
    for img in images:
        s = thumb / max(img.shape[:2])
        t = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
        tile = np.full((thumb, thumb, 3), 255, np.uint8)
        tile[: t.shape[0], : t.shape[1]] = t
        tiles.append(tile)
    bar = np.full((24, thumb * len(tiles), 3), 255, np.uint8)
    cv2.putText(bar, label, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, np.concatenate(tiles, axis=1)], axis=0)
