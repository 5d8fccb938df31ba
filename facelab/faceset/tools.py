"""The ``facelab faceset`` commands as one entry function each: do the job, return what was done.

The building blocks (``sort_faceset``, ``find_duplicates``, ``folder_coverage``, ...) stay in their modules; these
functions add the writing (renames, trash, plots) and a result whose ``summary()`` is the text the CLI prints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facelab.config import CoverageConfig, DedupeConfig, FilterConfig
from facelab.errors import FacelabError
from facelab.faceset.coverage import Coverage, folder_coverage, format_coverage
from facelab.faceset.coverage_plot import plot_coverage
from facelab.faceset.dedupe import find_duplicates
from facelab.faceset.info import faceset_info, format_info, plot_pose_histogram
from facelab.faceset.sort import apply_order, filter_faceset, move_to_trash, sort_faceset

_NO_TRASH = " (use --trash DIR to move them)"


@dataclass
class InfoResult:
    info: dict[str, Any]  # faceset_info's JSON-ready summary
    plot: str | None = None  # the pose histogram PNG written, if any

    def summary(self, as_json: bool = False) -> str:
        lines = [json.dumps(self.info, indent=1) if as_json else format_info(self.info)]
        return "\n".join(lines + ([f"pose histogram written to {self.plot}"] if self.plot else []))


@dataclass
class CoverageResult:
    coverage: Coverage
    cfg: CoverageConfig
    png: str | None = None  # the heatmap written, if any

    def to_json(self) -> str:
        return json.dumps(self.coverage.to_dict(min_dst=self.cfg.min_dst, fraction=self.cfg.fraction), indent=1)

    def plot_note(self) -> str:
        return f"coverage plot written to {self.png}" if self.png else ""

    def summary(self) -> str:
        text = format_coverage(self.coverage, min_dst=self.cfg.min_dst, fraction=self.cfg.fraction)
        return "\n".join([text, self.plot_note()]) if self.png else text


@dataclass
class SortResult:
    by: str
    order: list[Path]
    renamed: bool  # False: only the order file was written
    order_file: str | None = None

    def summary(self) -> str:
        where = f"; order written to {self.order_file}" if self.order_file else " (renamed)"
        return f"{len(self.order)} faces sorted by {self.by}{where}"


@dataclass
class DedupeResult:
    pairs: list[tuple[Path, Path]]  # (duplicate, the face it duplicates and that was kept)
    trash: str | None = None
    moved_to: list[Path] = field(default_factory=list)  # the duplicates' new paths in the trash

    def summary(self) -> str:
        lines = [f"{dup.name} duplicates {kept.name}" for dup, kept in self.pairs]
        where = f" moved to {self.trash}" if self.trash else _NO_TRASH
        return "\n".join([*lines, f"{len(self.pairs)} near-duplicates{where}"])


@dataclass
class FilterResult:
    rejected: list[Path]
    trash: str | None = None
    moved_to: list[Path] = field(default_factory=list)  # the rejects' new paths in the trash

    def summary(self) -> str:
        lines = [f"reject {p.name}" for p in self.rejected]
        where = f", moved to {self.trash}" if self.trash else _NO_TRASH
        return "\n".join([*lines, f"{len(self.rejected)} faces rejected{where}"])


def describe_faceset(folder: str | Path, plot: str | None = None) -> InfoResult:
    """Counts, sources and pose statistics of a faceset (facelab or DFL); ``plot``: also write the histogram PNG."""
    info = faceset_info(folder)
    if plot:
        plot_pose_histogram(folder, plot)
    return InfoResult(info, plot)


def compare_coverage(
    src: str, dst: str, cfg: CoverageConfig, png: str | None = None, plot: bool = True
) -> CoverageResult:
    """Pose and expression bins of ``dst`` that ``src`` covers thinly; with ``plot`` also the heatmap, written to
    ``png`` or beside the src folder (inside it a PNG would be taken for a face)."""
    if not 0 < cfg.fraction <= 1 or cfg.min_dst < 1:
        raise FacelabError("--fraction must be in (0, 1] and --min-dst at least 1")
    cov = folder_coverage(src, dst)
    out = (png or src.rstrip("/\\") + ".coverage.png") if plot else None
    if out is not None:
        plot_coverage(cov, out, min_dst=cfg.min_dst, fraction=cfg.fraction)
    return CoverageResult(cov, cfg, out)


def reorder_faceset(
    folder: str | Path, by: str, photo: str | Path | None = None, order_file: str | None = None
) -> SortResult:
    """Sort the faces by ``by`` and rename them into that order, or only write it to ``order_file``."""
    order = sort_faceset(folder, by, photo=photo)
    apply_order(folder, order, order_file=order_file)
    return SortResult(by, order, order_file is None, order_file)


def dedupe_faceset(folder: str | Path, cfg: DedupeConfig, trash: str | None = None) -> DedupeResult:
    """Find near-duplicate faces; with ``trash`` move them there (nothing is ever deleted)."""
    pairs = find_duplicates(folder, cfg.threshold)
    moved = move_to_trash([d for d, _ in pairs], trash) if trash and pairs else []
    return DedupeResult(pairs, trash, moved)


def filter_to_trash(folder: str | Path, cfg: FilterConfig, trash: str | None = None) -> FilterResult:
    """The faces outside ``cfg``'s pose ranges or sharpness; with ``trash`` move them there (never deleted)."""
    rejected = filter_faceset(folder, yaw=cfg.yaw, pitch=cfg.pitch, min_blur=cfg.min_blur)
    moved = move_to_trash(rejected, trash) if trash and rejected else []
    return FilterResult(rejected, trash, moved)
