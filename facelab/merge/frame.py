"""One merged frame on its own (the studio's merge tuner): ``FrameRenderer.render(i, cfg)`` is the frame ``merge``
hands to its encoder for frame ``i`` under the same settings, bit for bit.

It runs the merge's own per-frame code (``chosen_faces``, ``frame_jobs``, ``paste_jobs`` of ``pipeline.py``) on
frame ``i`` decoded alone (``io/seek.py``) with its faces from the dst faceset (faces found on the fly are smoothed
across the whole video, so one frame alone could not reproduce them). Motion blur compares with frame ``i - 1``'s
faces, as the merge does. The model's prediction for a frame is kept (it depends on the frame and its faces, never
on the settings), so changing mask, erode, blur, colour, sharpen, face scale or motion blur re-renders without the
model.

The merge predicts ``batch`` faces per model call and this one frame's faces per call; on the CPU the model gives
each face the same numbers either way (``tests/test_merge_settings.py`` checks it). A GPU may pick other kernels
for other batch sizes: there, set ``--batch 1`` for a merge that must match the tuner bit for bit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import numpy as np

from facelab.config import MergeConfig
from facelab.errors import FacelabError
from facelab.faces.finder import FaceFinder
from facelab.faces.identity import IdentityFilter
from facelab.io.seek import FrameReader
from facelab.merge.pipeline import (
    Merger,
    PlannedFace,
    _Job,
    check_mask_sources,
    check_runtime,
    check_stored_xseg,
    chosen_faces,
    face_centres,
    faces_from_faceset,
    frame_jobs,
    load_predictor,
    paste_jobs,
)
from facelab.merge.settings import WHOLE_RUN, MergeSettings

Prediction = tuple[tuple[np.ndarray, np.ndarray, np.ndarray], list[np.ndarray | None] | None]


class FrameRenderer:
    """``dst`` (a video or a folder of frames), its dst ``faceset`` and a model, ready to render single frames.
    ``run`` holds the whole-run options (runtime, precision, every_face, only_like, mask_model) as ``merge`` gets
    them; ``cache`` frames' predictions are kept."""

    def __init__(
        self,
        dst: str | Path,
        model_dir: str | Path,
        faceset: str | Path | None,
        run: MergeConfig | None = None,
        cache: int = 64,
    ) -> None:
        run = run or MergeConfig()
        if faceset is None:
            raise FacelabError(
                "rendering one frame needs the dst faceset (faces found on the fly are smoothed across the video)"
            )
        check_runtime(run.runtime, model_dir)
        self.dst, self.faceset, self.run = Path(dst), Path(faceset), run
        self.frames = FrameReader(self.dst)
        names = self.frames.names
        first = self.frames[0]
        size = (first.shape[1], first.shape[0])
        self.planned = faces_from_faceset(self.faceset, self.dst, len(self.frames), size, names)
        predictor, self.model_id = load_predictor(model_dir, run.runtime, run.precision)
        self.merger = Merger(predictor, None, run, mask_modes=("xseg-prd",) if run.mask_model else ())
        if run.only_like:
            self.merger.only_like = IdentityFilter(run.only_like, 0.6, FaceFinder())
        self.cache_size = cache
        self._predictions: OrderedDict[int, Prediction] = OrderedDict()
        self._chosen: dict[int, list[PlannedFace]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def res(self) -> int:
        return self.merger.res

    def render_settings(self, i: int, settings: MergeSettings) -> np.ndarray:
        """Frame ``i`` under a settings file's settings for it (what ``merge --settings`` writes)."""
        return self.render(i, settings.settings_for_frame(i, self.run))

    def render(self, i: int, cfg: MergeConfig | None = None) -> np.ndarray:
        """Frame ``i`` (uint8 RGB) merged with ``cfg``'s per-frame settings (default: ``run``'s)."""
        cfg = replace(cfg or self.run, **{k: getattr(self.run, k) for k in WHOLE_RUN})
        check_mask_sources(cfg.mask_mode, cfg.mask_model, self.faceset)
        with self._lock:
            image = self.frames[i]
            faces = self._faces(i, image)
            check_stored_xseg(cfg.mask_mode, self.faceset, faces)
            previous = face_centres(self._faces(i - 1)) if i > 0 else []
            jobs = frame_jobs(self.merger, image, faces, previous, cfg)
            if not jobs:
                return image
            preds, xprd = self._predicted(i, jobs)
            return paste_jobs(self.merger, image, jobs, preds, xprd)

    def predicted(self, i: int) -> bool:
        """Whether frame ``i``'s prediction is cached (a re-render skips the model)."""
        return i in self._predictions

    def forget_predictions(self) -> None:
        with self._lock:
            self._predictions.clear()

    def _faces(self, i: int, image: np.ndarray | None = None) -> list[PlannedFace]:
        if i not in self._chosen:
            faces = self.planned.get(i, [])
            if faces and self.merger.only_like is not None and image is None:
                image = self.frames[i]
            self._chosen[i] = chosen_faces(self.merger, image, faces) if faces else []
        return self._chosen[i]

    def _predicted(self, i: int, jobs: list[_Job]) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], list]:
        hit = self._predictions.get(i)
        if hit is None:
            hit = (self.merger.predict([j.crop for j in jobs]), None)
        preds, xprd = hit
        if xprd is None and any(j.xseg_context is not None for j in jobs):
            xprd = self.merger.xseg_prd(jobs, preds[0])
        self._predictions[i] = (preds, xprd)
        self._predictions.move_to_end(i)
        while len(self._predictions) > self.cache_size:
            self._predictions.popitem(last=False)
        return preds, xprd if xprd is not None else [None] * len(jobs)
