"""The ``facelab faceset`` commands as one entry function each: do the job, return what was done.

The building blocks (``sort_faceset``, ``find_duplicates``, ``folder_coverage``, ...) stay in their modules; these
functions add the writing (renames, trash, plots) and a result whose ``summary()`` is the text the CLI prints.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facelab.config import CoverageConfig, DedupeConfig, FilterConfig
from facelab.errors import FacelabError
from facelab.faceset.coverage import Coverage, folder_coverage, format_coverage
from facelab.faceset.coverage_plot import plot_coverage
from facelab.faceset.dedupe import find_duplicates
from facelab.faceset.info import faceset_info, format_info, plot_pose_histogram
from facelab.faceset.readable import readable_faces, skipped_line
from facelab.faceset.sort import apply_order, check_sort, filter_faceset, move_to_trash, order_faces, source_stems
from facelab.io.paths import refuse_overlap

_NO_TRASH = " (use --trash DIR to move them)"


def _unreadable_lines(unreadable: list[Path], note: str = "", with_folder: bool = False) -> list[str]:
    """The summary line for the faces skipped as unreadable (``faceset.readable``), if any."""
    return [skipped_line(unreadable, with_folder) + note] if unreadable else []


@dataclass
class InfoResult:
    info: dict[str, Any]  # faceset_info's JSON-ready summary
    plot: str | None = None  # the pose histogram PNG written, if any
    unreadable: list[Path] = field(default_factory=list)  # faces skipped: not counted in ``info``

    def summary(self, as_json: bool = False) -> str:
        if as_json:
            return json.dumps({**self.info, "unreadable": [str(p) for p in self.unreadable]}, indent=1)
        lines = [format_info(self.info), *_unreadable_lines(self.unreadable)]
        return "\n".join(lines + ([f"pose histogram written to {self.plot}"] if self.plot else []))


@dataclass
class CoverageResult:
    coverage: Coverage
    cfg: CoverageConfig
    png: str | None = None  # the heatmap written, if any
    unreadable: list[Path] = field(default_factory=list)  # faces of either folder skipped: not counted

    def to_json(self) -> str:
        d = self.coverage.to_dict(min_dst=self.cfg.min_dst, fraction=self.cfg.fraction)
        return json.dumps({**d, "unreadable": [str(p) for p in self.unreadable]}, indent=1)

    def plot_note(self) -> str:
        return f"coverage plot written to {self.png}" if self.png else ""

    def summary(self) -> str:
        text = format_coverage(self.coverage, min_dst=self.cfg.min_dst, fraction=self.cfg.fraction)
        lines = [text, *_unreadable_lines(self.unreadable, with_folder=True)]
        return "\n".join([*lines, self.plot_note()] if self.png else lines)


@dataclass
class SortResult:
    by: str
    order: list[Path]
    renamed: bool  # False: only the order file was written
    order_file: str | None = None
    unreadable: list[Path] = field(default_factory=list)  # not in ``order``, never renamed

    def summary(self) -> str:
        where = f"; order written to {self.order_file}" if self.order_file else " (renamed)"
        kept = " (not sorted; they keep their names)" if self.renamed else " (not in the order)"
        return "\n".join(
            [f"{len(self.order)} faces sorted by {self.by}{where}", *_unreadable_lines(self.unreadable, kept)]
        )


@dataclass
class DedupeResult:
    pairs: list[tuple[Path, Path]]  # (duplicate, the face it duplicates and that was kept)
    trash: str | None = None
    moved_to: list[Path] = field(default_factory=list)  # the duplicates' new paths in the trash
    unreadable: list[Path] = field(default_factory=list)  # not compared, never moved

    def summary(self) -> str:
        lines = [f"{dup.name} duplicates {kept.name}" for dup, kept in self.pairs]
        where = f" moved to {self.trash}" if self.trash else _NO_TRASH
        return "\n".join([*lines, f"{len(self.pairs)} near-duplicates{where}", *_unreadable_lines(self.unreadable)])


@dataclass
class FilterResult:
    rejected: list[Path]
    trash: str | None = None
    moved_to: list[Path] = field(default_factory=list)  # the rejects' new paths in the trash
    unreadable: list[Path] = field(default_factory=list)  # neither kept nor rejected, never moved

    def summary(self) -> str:
        lines = [f"reject {p.name}" for p in self.rejected]
        where = f", moved to {self.trash}" if self.trash else _NO_TRASH
        return "\n".join([*lines, f"{len(self.rejected)} faces rejected{where}", *_unreadable_lines(self.unreadable)])


def describe_faceset(folder: str | Path, plot: str | None = None) -> InfoResult:
    """Counts, sources and pose statistics of a faceset (facelab or DFL); ``plot``: also write the histogram PNG."""
    refuse_overlap({"faceset": folder}, {"--plot": plot})
    unreadable: list[Path] = []
    info = faceset_info(folder, unreadable)
    if plot:
        plot_pose_histogram(folder, plot, info)
    return InfoResult(info, plot, unreadable)


def compare_coverage(
    src: str, dst: str, cfg: CoverageConfig, png: str | None = None, plot: bool = True, add: Sequence[str] = ()
) -> CoverageResult:
    """Pose and expression bins of ``dst`` that ``src`` (with the faces of the ``add`` folders) covers thinly; with
    ``plot`` also the heatmap, written to ``png`` or beside the src folder (inside it a PNG would be taken for a
    face)."""
    refuse_overlap({"src faceset": src, "dst faceset": dst, **{f"--add {d}": d for d in add}}, {"--png": png})
    if not 0 < cfg.fraction <= 1 or cfg.min_dst < 1:
        raise FacelabError("--fraction must be in (0, 1] and --min-dst at least 1")
    unreadable: list[Path] = []
    cov = folder_coverage([src, *add] if add else src, dst, unreadable)
    out = (png or src.rstrip("/\\") + ".coverage.png") if plot else None
    if out is not None:
        plot_coverage(cov, out, min_dst=cfg.min_dst, fraction=cfg.fraction)
    return CoverageResult(cov, cfg, out, list(dict.fromkeys(unreadable)))  # once each, also when src is dst


def reorder_faceset(
    folder: str | Path, by: str, photo: str | Path | None = None, order_file: str | None = None
) -> SortResult:
    """Sort the faces by ``by`` and rename them into that order, or only write it to ``order_file``. Faces that
    cannot be read stay out of the order and keep their names."""
    refuse_overlap({"faceset": folder, "reference photo": photo}, {"--order-file": order_file})
    check_sort(by, photo)
    unreadable: list[Path] = []
    faces = readable_faces(folder, unreadable)
    order = order_faces(faces, by, photo, unreadable)
    apply_order(folder, order, order_file=order_file, stems=source_stems(faces))
    return SortResult(by, order, order_file is None, order_file, unreadable)


def dedupe_faceset(folder: str | Path, cfg: DedupeConfig, trash: str | None = None) -> DedupeResult:
    """Find near-duplicate faces; with ``trash`` move them there (nothing is ever deleted). A trash inside the
    faceset is refused: its faces would be read back as faces."""
    refuse_overlap({"faceset": folder}, {"--trash": trash})
    unreadable: list[Path] = []
    pairs = find_duplicates(folder, cfg.threshold, unreadable)
    moved = move_to_trash([d for d, _ in pairs], trash) if trash and pairs else []
    return DedupeResult(pairs, trash, moved, unreadable)


def filter_to_trash(folder: str | Path, cfg: FilterConfig, trash: str | None = None) -> FilterResult:
    """The faces outside ``cfg``'s pose ranges or sharpness; with ``trash`` move them there (never deleted)."""
    refuse_overlap({"faceset": folder}, {"--trash": trash})
    unreadable: list[Path] = []
    rejected = filter_faceset(folder, yaw=cfg.yaw, pitch=cfg.pitch, min_blur=cfg.min_blur, unreadable=unreadable)
    moved = move_to_trash(rejected, trash) if trash and rejected else []
    return FilterResult(rejected, trash, moved, unreadable)
