"""``facelab mask``: the mask stage's entry points - train a mask network, apply it to a faceset (each face's
predicted mask into its metadata), remove stored masks."""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from facelab.config import MaskConfig
from facelab.faceset.meta import FaceMeta, encode_xseg_mask
from facelab.faceset.readable import face_data, readable_faces, skipped_line
from facelab.faceset.store import update_meta, with_meta
from facelab.io.atomic import leaves_no_empty_dirs, write_atomic
from facelab.io.paths import refuse_overlap
from facelab.mask.samples import crop_hull, recrop
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
    pred = model.predict(np.stack(crops), hulls=_hulls(model, metas, mats))
    return [_unwarp(p, m, img.shape[0]) for img, m, p in zip(images, mats, pred)]


def _hulls(model: MaskModel, metas: Sequence[FaceMeta], mats: Sequence[np.ndarray]) -> np.ndarray | None:
    """Each face's landmark hull in its 256 px crop, for a model that takes them (None for an image-only one)."""
    return np.stack([crop_hull(meta, m) for meta, m in zip(metas, mats)]) if model.hull_prior else None


def _unwarp(pred: np.ndarray, m: np.ndarray, side: int) -> np.ndarray:
    """A 256 px whole-face prediction back in the face's aligned frame (``m``: aligned -> crop)."""
    return cv2.warpAffine(pred, m, (side, side), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR, borderValue=0.0)


APPLY_WRITERS = 4  # threads writing the rewritten files (each one's fsync waits on the disk, not a core)


def apply_mask(
    model: str | Path, faceset: str | Path, cfg: MaskConfig | None = None, progress: Progress | None = None
) -> MaskApplyResult:
    """Predict every readable face's mask with ``model``, binarise it at ``cfg.threshold`` (as DFL) and store it
    in the face's metadata (``xseg_mask``). Each file is rewritten atomically with its image bytes untouched, and
    only once its new mask is complete.

    Parallel by batches, not inside the network: one thread per core takes a batch of ``cfg.apply_batch`` faces
    through read, decode, re-crop, predict (torch on one thread), warp back, PNG and new metadata, and a few more
    threads write the files (fsync waits on the disk, not a core). A forward pass spread over all cores syncs its
    threads after every layer and stalls whenever one core is busy elsewhere (the decoding and writing beside it,
    another process): on 2 cores shared with other jobs it took ~50 ms of CPU per face, one-thread passes side by
    side ~5 ms. The masks are ``face_mask``'s binarised, bit for bit, whatever the threads."""
    cfg = cfg or MaskConfig()
    refuse_overlap({"mask model": model}, {"faceset": faceset})
    mm = load_mask_model(model)
    unreadable: list[Path] = []
    faces = readable_faces(faceset, unreadable)
    t0 = time.perf_counter()
    step = max(1, cfg.apply_batch)
    batches = [faces[s : s + step] for s in range(0, len(faces), step)]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = min(len(batches), cores)
    threads = torch.get_num_threads()
    written, coverage = 0, 0.0
    compute = ThreadPoolExecutor(workers, "mask-apply", initializer=torch.set_num_threads, initargs=(1,))
    writers = ThreadPoolExecutor(APPLY_WRITERS, "mask-write")
    try:
        ahead = 2 * workers  # batches in flight in each pool: memory bounded whatever the faceset's size

        def job(k: int) -> Future[list[tuple[Path, bytes, float]]]:
            return compute.submit(_masked_files, mm, batches[k], cfg.threshold, unreadable)

        jobs = deque(job(k) for k in range(min(ahead, len(batches))))
        pending: deque[tuple[int, list[Future[None]]]] = deque()  # (faces done once written, their writes)
        for k in range(len(batches)):
            files = jobs.popleft().result()
            if k + ahead < len(batches):
                jobs.append(job(k + ahead))
            pending.append((min(len(faces), (k + 1) * step), [writers.submit(write_atomic, p, d) for p, d, _ in files]))
            coverage += sum(c for _, _, c in files)
            last = k == len(batches) - 1
            while pending and (last or len(pending) > ahead or all(f.done() for f in pending[0][1])):
                done, writes = pending.popleft()
                for f in writes:
                    f.result()
                    written += 1
                if progress is not None:
                    progress(done, len(faces), None)
    finally:  # an error or ^C: queued batches are dropped; files being written finish (each one whole)
        compute.shutdown(wait=True, cancel_futures=True)
        writers.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(threads)  # the workers' one thread also set torch's default for new threads
    secs = time.perf_counter() - t0
    return MaskApplyResult(str(faceset), mm.name, written, secs, coverage / max(written, 1), unreadable)


def _masked_files(
    mm: MaskModel, batch: list[tuple[Path, FaceMeta]], threshold: float, unreadable: list[Path]
) -> list[tuple[Path, bytes, float]]:
    """(path, the file's new bytes, share of the aligned image that is face) of each readable face of ``batch``:
    its predicted mask binarised at ``threshold`` in its metadata, its image bytes as they were."""
    read = [(path, meta, face_data(path, unreadable)) for path, meta in batch]
    read = [(path, meta, *r) for path, meta, r in read if r is not None]
    if not read:
        return []
    crops, mats = zip(*(recrop(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), meta) for _, meta, _, bgr in read))
    pred = mm.predict(np.stack(crops), batch=len(crops), hulls=_hulls(mm, [meta for _, meta, _, _ in read], mats))
    out = []
    for (path, _, data, bgr), m, p in zip(read, mats, pred):
        binary = _unwarp(p, m, bgr.shape[0]) >= threshold
        out.append((path, _with_mask(path, data, encode_xseg_mask(binary)), np.count_nonzero(binary) / binary.size))
    return out


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
    """The face file with its metadata's ``xseg_mask`` replaced, written atomically (image bytes untouched)."""
    update_meta(path, xseg_mask=mask)


def _with_mask(path: Path, data: bytes, mask: str | None) -> bytes:
    """The bytes ``data`` of the face file ``path`` with its metadata's ``xseg_mask`` replaced, the image data
    kept byte for byte (``faceset.store.with_meta``)."""
    return with_meta(path, data, xseg_mask=mask)
