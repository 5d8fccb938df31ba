"""``facelab augment render``: new poses and expressions of the source person by 3D re-rendering.

Each source face is lifted to 3D (``lift``: its FaceMesh, from the metadata when the faceset was extracted with
FaceMesh, measured on the crop otherwise), edited and drawn (``draw``), then put through extraction again
(``reextract``): a render is kept only if a face is found in it and its dlib descriptor is nearer than
``min_identity`` to the mean of the faceset's real faces. Kept renders are written to their own folder as
``render_<source stem>_<edit tag>.jpg``, flagged synthetic, with the provenance in ``FaceMeta.extra`` (method, source
face, yaw/pitch change, expressions). A file that exists is not rendered again: a re-run resumes. Source faces are
only read.

``fill``: the pose and expression bins the src lacks against a dst (``faceset coverage``) are filled from the source
faces nearest to each bin; a render counts for a bin only if its measured pose or expression lands there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facelab.augment.reextract import mean_descriptor
from facelab.augment.render.draw import MAX_ANGLE, Edit, MouthTexture
from facelab.augment.render.expression import EDITS
from facelab.augment.render.worker import Outcome, RenderPool, RenderSetup, Task
from facelab.config import RenderConfig
from facelab.errors import FacelabError
from facelab.faces.identity import FaceDescriber
from facelab.faceset.coverage import (
    MOUTH_LABELS,
    SMILE_LABELS,
    YAW_EDGES,
    coverage,
    expression_bin,
    expression_features,
    format_coverage,
    pose_bin,
)
from facelab.faceset.index import load_metas
from facelab.faceset.meta import FaceMeta
from facelab.faceset.store import read_face, write_face
from facelab.geometry.openness import mouth_aspect_ratio
from facelab.io.atomic import ensure_writable_dir, leaves_no_empty_dirs, write_atomic
from facelab.io.paths import refuse_overlap

OPEN_MOUTH_MAR = 0.45  # a real face this open lends its mouth to mouth-open renders
MOUTH_CANDIDATES = 8  # widest-open real faces examined for a donor mouth
MAX_MOUTH_CONTRAST = 0.6  # a donor's opening must be at most this bright relative to its cheeks
BATCH_PER_WORKER = 6  # renders in flight per worker process
MIN_RENDERS_FOR_POOL = 24  # fewer planned renders are drawn in this process
# expression bins -> the strengths that aim at them (mouth: closed, parted, open, wide; smile: none, slight, broad)
MOUTH_STRENGTH = (0.0, 0.35, 0.7, 1.0)
SMILE_STRENGTH = (0.0, 0.5, 1.0)
Progress = Callable[[int, int | None, str], None]  # (renders done, total if known, readout)


@dataclass
class EditStats:
    """What became of the renders of one edit."""

    rendered: int = 0
    detected: int = 0
    kept: int = 0
    yaw_error: list[float] = field(default_factory=list)  # measured minus requested change, degrees
    pitch_error: list[float] = field(default_factory=list)


@dataclass
class RenderReport:
    faceset: str
    out: str
    rendered: int = 0
    no_face: int = 0
    wrong_identity: int = 0
    missed_bin: int = 0  # fill: found and the person, but its measured pose/expression is not the bin's
    kept: int = 0
    existing: int = 0  # renders already in the folder (a previous run)
    no_mesh: list[str] = field(default_factory=list)  # source faces FaceMesh could not fit
    per_edit: dict[str, EditStats] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    coverage_before: str = ""
    coverage_after: str = ""
    preview: str = ""
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.rendered / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        lines = []
        if self.coverage_before:
            lines += ["coverage before:", self.coverage_before, ""]
        lines.append(
            f"{self.kept} renders written to {self.out} ({self.existing} already there); {self.rendered} rendered "
            f"({self.rate:.1f}/s): {self.no_face} without a face, {self.wrong_identity} not the source person"
            + (f", {self.missed_bin} outside their bin" if self.missed_bin else "")
        )
        if self.no_mesh:
            lines.append(f"  {len(self.no_mesh)} source faces skipped: FaceMesh found no face (e.g. {self.no_mesh[0]})")
        if self.preview:
            lines.append(f"  preview: {self.preview}")
        if self.coverage_after:
            lines += ["", "coverage after:", self.coverage_after]
        return "\n".join(lines)


@dataclass
class _Job:
    source: int  # index into the real source faces
    edit: Edit
    target: tuple[str, tuple[int, int]] | None = None  # fill: the bin the render must land in


@leaves_no_empty_dirs("out")
def render_faces(
    faceset: str | Path,
    out: str | Path,
    edits: Sequence[Edit],
    cfg: RenderConfig,
    *,
    n: int | None = None,
    dst: str | Path | None = None,
    fill: bool = False,
    preview: str | Path | None = None,
    progress: Progress | None = None,
) -> RenderReport:
    """Render the real faces of ``faceset`` with each of ``edits`` into ``out`` (see the module docstring); with
    ``n``, at most ``n`` renders spread over the source faces; with ``fill``, the bins the src lacks against
    ``dst`` instead of ``edits``, until each holds ``n`` (or ``cfg.fill_faces``) faces."""
    refuse_overlap({"--faceset": faceset, "--dst": dst}, {"--out": out, "--preview": preview})
    _check_request(edits, cfg, n, dst, fill)
    real = [(p, m) for p, m in load_metas(faceset) if not m.synthetic]
    if not real:
        raise FacelabError(f"{faceset}: no real faces to render (synthetic faces are never re-rendered)")
    dst_metas = [m for _, m in load_metas(dst)] if dst is not None else []
    out = Path(out)
    previous = [m for _, m in load_metas(out)] if out.is_dir() and any(out.iterdir()) else []
    report = RenderReport(str(faceset), str(out))
    names = {"src_name": f"{faceset} + {out}", "dst_name": str(dst)}
    cov_before = coverage([m for _, m in real] + previous, dst_metas, **names) if fill else None
    if cov_before is not None:
        report.coverage_before = format_coverage(cov_before)
    jobs = (
        _fill_jobs(real, cov_before, n or cfg.fill_faces, cfg.fill_tries) if cov_before else _edit_jobs(real, edits, n)
    )
    ensure_writable_dir(out, "--out")
    describer = FaceDescriber()
    setup = RenderSetup(
        real, mean_descriptor(real, describer), real[0][1].face_type, real[0][1].size, _open_mouth(real)
    )
    planned = None if fill else (n or len(real) * len(edits))
    workers = _workers(cfg.workers, planned)
    run = _Run(real, out, cfg, report, n, planned, progress)
    t0 = time.perf_counter()
    pool = RenderPool(setup, workers)
    try:
        for job, need in jobs:
            if run.pending and not run.wanted(job, need):
                run.flush(pool)  # renders in flight may fail: their results say whether this job is needed
            if not run.wanted(job, need):
                if run.done:
                    break
                continue
            run.add(job)
            if len(run.pending) >= BATCH_PER_WORKER * workers:
                run.flush(pool)
        run.flush(pool)
    finally:
        pool.close()
    if report.rendered == 0 and report.existing == 0:
        if report.no_mesh:
            raise FacelabError(f"{faceset}: FaceMesh found no face on any source face; nothing was rendered")
        raise FacelabError(f"{faceset}: nothing to render for this request")
    report.seconds = time.perf_counter() - t0
    if preview is not None and run.sheet:
        write_atomic(preview, _encode_png(_sheet(run.sheet)))
        report.preview = str(preview)
    if cov_before is not None:
        after = [m for _, m in load_metas(out)] if out.is_dir() and any(out.iterdir()) else []
        report.coverage_after = format_coverage(coverage([m for _, m in real] + after, dst_metas, **names))
    return report


class _Run:
    """Book-keeping of one render_faces call: which jobs are still wanted, the batch in flight, the preview rows."""

    def __init__(
        self,
        real: list[tuple[Path, FaceMeta]],
        out: Path,
        cfg: RenderConfig,
        report: RenderReport,
        n: int | None,
        planned: int | None,
        progress: Progress | None,
    ) -> None:
        self.real, self.out, self.cfg, self.report, self.n = real, out, cfg, report, n
        self.planned, self.progress = planned, progress
        self.pending: list[_Job] = []
        self.needed: dict[tuple[str, tuple[int, int]], int] = {}  # fill: faces each bin still lacks
        self.sheet: dict[int, list[tuple[np.ndarray, bool]]] = {}
        # preview rows: sources spread over the faceset; with --fill (renders come from the sources nearest each
        # bin) the first sources rendered
        k = min(cfg.preview_faces, len(real))
        spread = set(np.linspace(0, len(real) - 1, k).round().astype(int).tolist())
        self.sheet_rows: set[int] | None = None if planned is None else spread

    def path(self, job: _Job) -> Path:
        return self.out / f"render_{self.real[job.source][0].stem}_{job.edit.tag}.jpg"

    @property
    def done(self) -> bool:
        """-n reached (plain mode)."""
        return self.n is not None and self.report.kept + self.report.existing >= self.n and not self.needed

    def wanted(self, job: _Job, need: int) -> bool:
        """Whether ``job`` would still add a face, counting the renders in flight as kept."""
        if job.target is not None:
            self.needed.setdefault(job.target, need)
            return self.needed[job.target] - sum(j.target == job.target for j in self.pending) > 0
        if self.n is not None:
            return self.report.kept + self.report.existing + len(self.pending) < self.n
        return True

    def add(self, job: _Job) -> None:
        if self.path(job).exists():  # a previous run's render: resume
            self.report.existing += 1
            if job.target is not None:
                self.needed[job.target] -= 1
            return
        self.pending.append(job)

    def flush(self, pool: RenderPool) -> None:
        """Render the batch in flight and file the results."""
        if not self.pending:
            return
        jobs, self.pending = self.pending, []
        tasks = [Task(j.source, j.edit, self._provenance(j)) for j in jobs]
        for job, outcome in zip(jobs, pool.map(tasks)):
            kept = self._file(job, outcome)
            if outcome.image is not None and self._on_sheet(job.source):
                if job.source not in self.sheet:  # the source image is read once per preview row, not per render
                    self.sheet[job.source] = [(read_face(self.real[job.source][0])[0], True)]
                self.sheet[job.source].append((outcome.image, kept))
        if self.progress is not None:
            r = self.report
            self.progress(
                r.rendered, self.planned, f"kept {r.kept}, no face {r.no_face}, other person {r.wrong_identity}"
            )

    def _on_sheet(self, source: int) -> bool:
        if self.sheet_rows is not None:
            return source in self.sheet_rows
        return source in self.sheet or len(self.sheet) < self.cfg.preview_faces

    def _provenance(self, job: _Job) -> dict[str, Any]:
        return {
            "method": "render",
            "source_face": self.real[job.source][0].name,
            "yaw_change": job.edit.yaw,
            "pitch_change": job.edit.pitch,
            "expressions": [[e, s] for e, s in job.edit.expressions],
        }

    def _file(self, job: _Job, outcome: Outcome) -> bool:
        """Count one render and write it if it passes; whether it was kept."""
        report, src_meta = self.report, self.real[job.source][1]
        if outcome.image is None:
            name = self.real[job.source][0].name
            if name not in report.no_mesh:
                report.no_mesh.append(name)
            return False
        report.rendered += 1
        stats = report.per_edit.setdefault(job.edit.tag if job.target is None else _bin_name(job.target), EditStats())
        stats.rendered += 1
        r = outcome.found
        if r is None:
            report.no_face += 1
            return False
        stats.detected += 1
        stats.yaw_error.append(round(r.meta.yaw - src_meta.yaw - job.edit.yaw, 2))
        stats.pitch_error.append(round(r.meta.pitch - src_meta.pitch - job.edit.pitch, 2))
        if r.distance >= self.cfg.min_identity:
            report.wrong_identity += 1
            return False
        if job.target is not None and _bin_of(r.meta, job.target[0]) != job.target[1]:
            report.missed_bin += 1
            return False
        path = self.path(job)
        write_face(path, r.face, r.meta)  # atomic: a reader never sees half a face
        stats.kept += 1
        report.kept += 1
        report.files.append(str(path))
        if job.target is not None:
            self.needed[job.target] -= 1
        return True


def _workers(setting: int, planned: int | None) -> int:
    """Processes to render with: ``setting``, or (0) one per CPU core up to 4 when the job is big enough to pay
    for their start-up (a few seconds each)."""
    if setting > 0:
        return setting
    if planned is not None and planned < MIN_RENDERS_FOR_POOL:
        return 1
    return max(1, min(4, len(os.sched_getaffinity(0))))


def _check_request(edits: Sequence[Edit], cfg: RenderConfig, n: int | None, dst: Any, fill: bool) -> None:
    if fill and dst is None:
        raise FacelabError("--fill needs --dst DST: the faceset whose poses and expressions the src should cover")
    if dst is not None and not fill:
        raise FacelabError("--dst is only used with --fill")
    if not fill and not edits:
        raise FacelabError("nothing to render: give --yaw, --pitch, --expression or --fill --dst DST")
    if n is not None and n < 1:
        raise FacelabError(f"-n must be at least 1 (got {n})")
    if not cfg.min_identity > 0:
        raise FacelabError(f"--min-identity must be a positive distance (got {cfg.min_identity})")
    for e in edits:
        for axis, v in (("--yaw", e.yaw), ("--pitch", e.pitch)):
            if not abs(v) <= MAX_ANGLE:
                raise FacelabError(f"{axis} {v:g}: a change must be within +-{MAX_ANGLE:g} degrees of the source pose")
        for name, s in e.expressions:
            if name not in EDITS:
                raise FacelabError(f"--expression {name}: unknown (choose {', '.join(EDITS)})")
            if not 0 <= s <= 1:
                raise FacelabError(f"--expression {name}:{s:g}: strength must be in [0, 1]")


def _edit_jobs(real: list[tuple[Path, FaceMeta]], edits: Sequence[Edit], n: int | None) -> Iterator[tuple[_Job, int]]:
    """Every source face x every edit; with ``n``, sources spread evenly over the faceset and edits taken in turn."""
    if n is None:
        for i in range(len(real)):
            for e in edits:
                yield _Job(i, e), 0
        return
    k = min(len(real), max(1, -(-n // len(edits))))  # enough sources for n renders at one per edit
    order = np.unique(np.linspace(0, len(real) - 1, k).round().astype(int)).tolist()
    for _ in range(len(real)):  # then more sources if renders fail, never the same (source, edit) twice
        for i in order:
            for e in edits:
                yield _Job(i, e), 0
        rest = [i for i in range(len(real)) if i not in set(order)]
        if not rest:
            return
        order = rest[:k]


def _fill_jobs(real: list[tuple[Path, FaceMeta]], cov: Any, hold: int, tries: int) -> Iterator[tuple[_Job, int]]:
    """For each thin bin, renders from the nearest source faces, ``tries`` per face the bin still lacks."""
    yaw = np.array([m.yaw for _, m in real])
    pitch = np.array([m.pitch for _, m in real])
    feats = [expression_bin(*expression_features(m.landmarks)) for _, m in real]
    for b in cov.thin_bins(with_synthetic=True):
        have = b.src + b.synthetic
        need = hold - have
        if need <= 0:
            continue
        i, j = b.index
        if b.kind == "pose":
            cy, cp = (YAW_EDGES[i] + YAW_EDGES[i + 1]) / 2, (YAW_EDGES[j] + YAW_EDGES[j + 1]) / 2
            d = np.hypot(yaw - cy, pitch - cp)
            for s in np.argsort(d, kind="stable")[: need * tries]:
                dy, dp = round(cy - yaw[s]), round(cp - pitch[s])
                if max(abs(dy), abs(dp)) <= MAX_ANGLE:
                    yield _Job(int(s), Edit(dy, dp), ("pose", (i, j))), need
        else:
            expr = []
            if MOUTH_STRENGTH[i] > 0:
                expr.append(("mouth-open", MOUTH_STRENGTH[i]))
            if SMILE_STRENGTH[j] > 0:
                expr.append(("smile", SMILE_STRENGTH[j]))
            neutral = [s for s, f in enumerate(feats) if f is not None and f[0] <= i and f[1] <= j]
            for s in neutral[:: max(1, len(neutral) // (need * tries))][: need * tries]:
                yield _Job(s, Edit(expressions=tuple(expr)), ("expression", (i, j))), need


def _open_mouth(real: list[tuple[Path, FaceMeta]]) -> MouthTexture:
    """The inside of a mouth for mouth-open renders: among the real faces open wider than ``OPEN_MOUTH_MAR``, the
    one whose opening is darkest against its cheeks (an open mouth, not a tongue or lips caught mid-word); a dark
    mouth when none is."""
    mar = np.array([float(mouth_aspect_ratio(m.landmarks)) for _, m in real])
    best, best_contrast = None, MAX_MOUTH_CONTRAST
    for i in np.argsort(-mar)[:MOUTH_CANDIDATES]:
        if mar[i] < OPEN_MOUTH_MAR:
            break
        image, meta = read_face(real[i][0])
        contrast = _mouth_contrast(image, meta.landmarks)
        if contrast < best_contrast:
            best, best_contrast = (image, meta), contrast
    return MouthTexture.from_face(best[0], best[1].landmarks) if best else MouthTexture.dark()


def _mouth_contrast(image: np.ndarray, lm: np.ndarray) -> float:
    """Mean luma inside the inner lips (68 points 60-67) over the mean luma of the cheeks under the eyes."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    inside = np.zeros(gray.shape, np.uint8)
    cv2.fillPoly(inside, [np.round(lm[60:68]).astype(np.int32)], 1)
    cheeks = [np.round((lm[a] + lm[b]) / 2).astype(int) for a, b in ((41, 48), (46, 54))]
    r = max(2, int(np.linalg.norm(lm[45] - lm[36]) / 12))
    skin = np.mean([gray[y - r : y + r, x - r : x + r].mean() for x, y in cheeks])
    return float(gray[inside > 0].mean() / max(skin, 1.0)) if inside.any() else 1.0


def _bin_of(meta: FaceMeta, kind: str) -> tuple[int, int] | None:
    if kind == "pose":
        return pose_bin(meta.yaw, meta.pitch)
    return expression_bin(*expression_features(meta.landmarks))


def _bin_name(target: tuple[str, tuple[int, int]]) -> str:
    kind, (i, j) = target
    if kind == "pose":
        return (
            f"pose yaw {YAW_EDGES[i]:+.0f}..{YAW_EDGES[i + 1]:+.0f} pitch {YAW_EDGES[j]:+.0f}..{YAW_EDGES[j + 1]:+.0f}"
        )
    return f"expression mouth {MOUTH_LABELS[i]} smile {SMILE_LABELS[j]}"


def _sheet(rows: dict[int, list[tuple[np.ndarray, bool]]], cell: int = 160) -> np.ndarray:
    """One row per previewed source face: the source, then its renders; a rejected render is framed red."""
    width = max(len(r) for r in rows.values())
    sheet = np.full((cell * len(rows), cell * width, 3), 24, np.uint8)
    for y, (_, row) in enumerate(sorted(rows.items())):
        for x, (img, kept) in enumerate(row):
            tile = cv2.resize(img, (cell, cell), interpolation=cv2.INTER_AREA)
            if not kept:
                cv2.rectangle(tile, (1, 1), (cell - 2, cell - 2), (220, 40, 40), 3)
            sheet[y * cell : (y + 1) * cell, x * cell : (x + 1) * cell] = tile
    return sheet


def _encode_png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise FacelabError("could not encode the preview sheet")
    return buf.tobytes()
