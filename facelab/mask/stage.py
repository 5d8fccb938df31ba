"""``facelab mask``: the mask stage's entry points - train a mask network, apply it to a faceset (each face's
predicted mask into its metadata), remove stored masks."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from facelab.config import MaskConfig
from facelab.errors import FacesetError
from facelab.faceset.meta import FaceMeta, embed, encode_xseg_mask, read_meta_bytes
from facelab.faceset.readable import face_pixels, readable_faces, skipped_line
from facelab.io.atomic import leaves_no_empty_dirs, write_atomic
from facelab.io.paths import refuse_overlap
from facelab.mask.samples import recrop
from facelab.mask.trainer import MaskTrainer
from facelab.models.xseg import RESOLUTION, MaskModel, count_params, load_mask_model
from facelab.runs.loop import RunOutcome
from facelab.runs.progress import RunProgress, Scalars, run_progress

Progress = Callable[[int, int | None, str | None], None]


@dataclass
class MaskTrainResult(RunOutcome):
    """``folder`` is the mask model folder."""

    iteration: int
    faces: int
    labelled: int

    def summary(self) -> str:
        what = f"{self.labelled} labelled" + (
            f" + {self.faces - self.labelled} hull-labelled" if self.faces > self.labelled else ""
        )
        return self.stopped_line(
            f"iteration {self.iteration} ({what} faces)", "checkpoint, preview.png, previews/ and losses.png"
        )


@dataclass
class MaskApplyResult:
    faceset: str
    model: str
    written: int
    seconds: float
    mean_coverage: float  # mean fraction of the aligned image kept as face
    unreadable: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.written / self.seconds if self.seconds > 0 else 0.0
        line = (
            f"stored masks of {self.model} in {self.written} faces of {self.faceset} ({rate:.1f} faces/s; "
            f"{self.mean_coverage:.0%} of the aligned image is face on average)"
        )
        return line + (f"; {skipped_line(self.unreadable)}" if self.unreadable else "")


@dataclass
class MaskRemoveResult:
    faceset: str
    removed: int
    faces: int
    unreadable: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        line = f"removed the stored mask of {self.removed} of {self.faces} faces in {self.faceset}"
        return line + (f"; {skipped_line(self.unreadable)}" if self.unreadable else "")


@leaves_no_empty_dirs("out")  # a run that fails to start leaves no empty model folder
def train_mask(
    facesets: Sequence[str | Path],
    out: str | Path,
    cfg: MaskConfig,
    given: set[str] | None = None,
    iterations: int | None = None,
    minutes: float | None = None,
    init_from: str | Path | None = None,
    generic: bool = False,
    progress: RunProgress | None = None,
    log: Callable[[str], None] | None = None,
) -> MaskTrainResult:
    """Train (or resume) the mask model ``out`` on the polygon-labelled faces of ``facesets`` (``generic``: every
    face, hull-labelled where it has no polygons) until ``iterations`` in total or for ``minutes``."""
    t = MaskTrainer(facesets, out, cfg, given, generic=generic, init_from=init_from)
    if log is not None:
        log(
            f"mask U-Net {t.cfg.widths} @ {RESOLUTION} px, {count_params(t.net):,} parameters, batch {t.cfg.batch}, "
            f"{t.cfg.optimizer} lr {t.cfg.lr:g}; {len(t.bank)} faces ({int(t.bank.labelled.sum())} labelled); "
            f"starting at iteration {t.iteration}"
        )
    res = t.run(iterations, minutes, progress=run_progress(progress, t.iteration, iterations, _losses))
    return MaskTrainResult(str(out), res.stopped, res.seconds, t.iteration, len(t.bank), int(t.bank.labelled.sum()))


def _losses(s: Scalars) -> str:
    return f"bce {s['bce']:.4f}" + (f" dice {s['dice']:.4f}" if "dice" in s else "")


def face_mask(model: MaskModel, images: Sequence[np.ndarray], metas: Sequence[FaceMeta]) -> list[np.ndarray]:
    """Each aligned face's predicted mask in its own aligned frame (float32 (S, S), S = its side): the face is
    re-cropped to the model's whole face at 256 px, predicted, and the mask warped back."""
    crops, mats = zip(*(recrop(img, meta) for img, meta in zip(images, metas)))
    pred = model.predict(np.stack(crops))
    out = []
    for img, m, p in zip(images, mats, pred):
        s = img.shape[0]
        out.append(cv2.warpAffine(p, m, (s, s), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR, borderValue=0.0))
    return out


def apply_mask(
    model: str | Path, faceset: str | Path, cfg: MaskConfig | None = None, progress: Progress | None = None
) -> MaskApplyResult:
    """Predict every readable face's mask with ``model``, binarise it at ``cfg.threshold`` (as DFL) and store it
    in the face's metadata (``xseg_mask``). Each file is rewritten atomically with its image bytes untouched, and
    only once its new mask is complete."""
    cfg = cfg or MaskConfig()
    refuse_overlap({"mask model": model}, {"faceset": faceset})
    mm = load_mask_model(model)
    unreadable: list[Path] = []
    faces = readable_faces(faceset, unreadable)
    t0 = time.perf_counter()
    written, coverage = 0, 0.0
    for s in range(0, len(faces), cfg.apply_batch):
        chunk = []
        for path, meta in faces[s : s + cfg.apply_batch]:
            bgr = face_pixels(path, unreadable)
            if bgr is not None:
                chunk.append((path, meta, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        if not chunk:
            continue
        masks = face_mask(mm, [c[2] for c in chunk], [c[1] for c in chunk])
        for (path, _, _), m in zip(chunk, masks):
            binary = (m >= cfg.threshold).astype(np.float32)
            _rewrite(path, encode_xseg_mask(binary))
            written += 1
            coverage += float(binary.mean())
        if progress is not None:
            progress(min(s + cfg.apply_batch, len(faces)), len(faces), None)
    secs = time.perf_counter() - t0
    return MaskApplyResult(str(faceset), mm.name, written, secs, coverage / max(written, 1), unreadable)


def remove_masks(faceset: str | Path) -> MaskRemoveResult:
    """Drop the stored mask (``xseg_mask``) of every face of ``faceset`` that has one (files rewritten atomically,
    image bytes untouched)."""
    unreadable: list[Path] = []
    faces = readable_faces(faceset, unreadable)
    removed = 0
    for path, meta in faces:
        if meta.xseg_mask is None:
            continue
        _rewrite(path, None)
        removed += 1
    return MaskRemoveResult(str(faceset), removed, len(faces), unreadable)


def _rewrite(path: Path, mask: str | None) -> None:
    """The face file with its metadata's ``xseg_mask`` replaced: metadata re-read from the file itself (not the
    index), image bytes kept as they are, written atomically."""
    data = path.read_bytes()
    meta = read_meta_bytes(data)
    if meta is None:
        raise FacesetError(f"{path}: not a facelab face (no embedded metadata)")
    meta.xseg_mask = mask
    write_atomic(path, embed(data, meta))
