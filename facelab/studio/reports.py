"""The reports page: the evaluation reports (folders written by ``facelab evaluate``: ``report.json`` and
``report.html``) and coverage plots (``*.coverage.png`` of ``facelab faceset coverage``) of the workspace.

A report is shown in the studio's own template from its ``report.json`` (metric table with each sample size, per-bin
values, notes), not by framing ``report.html``: framing would need the studio's ``frame-ancestors 'none'`` and
``X-Frame-Options: DENY`` relaxed for part of the site. The full ``report.html`` (self-contained: inline styles,
``data:`` images, no scripts) opens as a page of its own under the studio's Content-Security-Policy plus a second,
stricter one (``sandbox``, no scripts, no requests but ``data:`` images), so even a doctored report.html in the
workspace can run nothing and read nothing of the studio.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from facelab.evaluate.table import BIN_BARS, format_value, metric_rows
from facelab.studio.security import StudioError, relative_name, resolve_inside, walk_inside
from facelab.studio.web import Studio, render, short_message, studio

router = APIRouter()
NAV = (("Reports", "/reports"),)
REPORT_JSON = "report.json"  # the names ``facelab.evaluate.report.evaluate`` writes
REPORT_HTML = "report.html"
COVERAGE_SUFFIX = ".coverage.png"  # ``facelab faceset coverage``: beside the src folder, SRC.coverage.png
FIND_DEPTH = 4  # folders below the workspace searched, as for facesets
MAX_REPORT_BYTES = 64 << 20  # a report.json larger than this is not parsed (one line instead)
# A second policy for report.html, enforced with the studio's own (each policy must allow a thing): no scripts,
# no requests, a unique origin (sandbox: no cookies, no reading the studio), only inline styles and data: images.
REPORT_HTML_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"


@dataclass(frozen=True)
class ReportEntry:
    rel: str  # the folder (report) or the PNG (coverage), '/'-separated, in the workspace
    name: str
    kind: str  # "report" | "coverage"
    mtime: float
    has_html: bool = False

    @property
    def written(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.mtime))


def setup(s: Studio) -> None:
    """Nothing to keep: reports are listed from the disk on each visit."""


def warm(s: Studio) -> None:
    for name in ("reports.html", "report.html", "coverage.html"):
        s.templates.get_template(name)


# --- pages -------------------------------------------------------------------------------------------------------


@router.get("/reports")
def reports_page(request: Request) -> Response:
    entries = find_reports(studio(request).root)
    return render(
        request,
        "reports.html",
        reports=[e for e in entries if e.kind == "report"],
        coverage=[e for e in entries if e.kind == "coverage"],
    )


@router.get("/reports/view/{rel:path}")
def report_view(request: Request, rel: str) -> Response:
    """A report folder's key metrics, or a coverage plot."""
    s = studio(request)
    path = resolve_inside(s.root, rel)
    rel = relative_name(s.root, path)
    if path.is_file() and path.name.endswith(COVERAGE_SUFFIX):
        return render(request, "coverage.html", rel=rel, name=path.name)
    folder = report_folder(s, rel)
    report = read_report(folder / REPORT_JSON, rel)
    context = report_context(report)
    context["inputs"] = {k: short_message(s, str(v)) for k, v in context["inputs"].items()}  # paths in the workspace
    return render(request, "report.html", rel=rel, name=folder.name, has_html=(folder / REPORT_HTML).is_file(),
                  **context)  # fmt: skip


@router.get("/reports/html/{rel:path}")
def report_html(request: Request, rel: str) -> Response:
    """The report folder's own report.html, as a page of its own under the extra sandboxing policy."""
    s = studio(request)
    folder = report_folder(s, rel)
    page = folder / REPORT_HTML
    if not page.is_file():
        raise StudioError(f"{rel}: no {REPORT_HTML} in this report folder", 404)
    return FileResponse(
        page,
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": REPORT_HTML_CSP},
    )


@router.get("/reports/image/{rel:path}")
def coverage_image(request: Request, rel: str) -> Response:
    """A coverage plot (only ``*.coverage.png`` files are served here)."""
    path = resolve_inside(studio(request).root, rel)
    if not path.is_file() or not path.name.endswith(COVERAGE_SUFFIX):
        raise StudioError(f"{rel}: not a coverage plot (*{COVERAGE_SUFFIX})", 404)
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-cache"})


# --- helpers -----------------------------------------------------------------------------------------------------


def find_reports(root: Path, depth: int = FIND_DEPTH) -> list[ReportEntry]:
    """Report folders (holding a report.json) and coverage plots of ``root``, hidden folders and symlinks out of
    the workspace left out; newest first."""
    found: list[ReportEntry] = []
    for _, real, entries, _ in walk_inside(root, depth):
        rel = relative_name(root, real)
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                if e.name == REPORT_JSON and e.is_file():
                    found.append(ReportEntry(rel, real.name if rel else root.name, "report", e.stat().st_mtime,
                                             (real / REPORT_HTML).is_file()))  # fmt: skip
                elif e.name.endswith(COVERAGE_SUFFIX) and e.is_file() and Path(e.path).resolve().is_relative_to(root):
                    name = f"{rel}/{e.name}" if rel else e.name
                    found.append(ReportEntry(name, e.name, "coverage", e.stat().st_mtime))
            except OSError:
                continue
    return sorted(found, key=lambda e: (-e.mtime, e.rel))


def report_folder(s: Studio, rel: str) -> Path:
    folder = s.root if rel in ("", ".") else resolve_inside(s.root, rel.strip("/"))
    if not folder.is_dir() or not (folder / REPORT_JSON).is_file():
        raise StudioError(f"{rel or '.'}: not a report folder (no {REPORT_JSON}; written by facelab evaluate)", 404)
    return folder


def read_report(path: Path, rel: str) -> dict[str, Any]:
    """report.json as a dict, or a one-line StudioError (422) saying why not."""
    where = f"{rel}/{REPORT_JSON}" if rel else REPORT_JSON
    if path.stat().st_size > MAX_REPORT_BYTES:
        raise StudioError(f"{where}: larger than {MAX_REPORT_BYTES >> 20} MB, not read", 422)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StudioError(f"{where}: not a readable report ({e})", 422) from e
    if not isinstance(report, dict) or not isinstance(report.get("metrics"), dict):
        raise StudioError(f"{where}: no 'metrics' object (not a facelab evaluate report)", 422)
    return report


def report_context(report: dict[str, Any]) -> dict[str, Any]:
    """What report.html (the studio template) shows: the metric table, the per-bin table, frames, inputs, notes."""
    rows = [
        (label.strip(), label.startswith(" "), _value(m.get("value")), m.get("n", ""))
        for _, label, m in metric_rows(report)
        if isinstance(m, dict)
    ]
    bins = report.get("bins") if isinstance(report.get("bins"), dict) else {}
    bin_rows = []
    for name, metrics in bins.items():
        if not isinstance(metrics, dict):
            continue
        cells = []
        for key, _ in BIN_BARS:
            m = metrics.get(key)
            cells.append(_value(m.get("value")) if isinstance(m, dict) else "")
        first = next((m for m in metrics.values() if isinstance(m, dict)), {})
        bin_rows.append((name, first.get("n", ""), cells))
    frames = report.get("frames") if isinstance(report.get("frames"), dict) else {}
    skipped = frames.get("skipped", [])
    return {
        "rows": rows,
        "bin_labels": [label for _, label in BIN_BARS],
        "bin_rows": bin_rows,
        "evaluated": frames.get("evaluated", "?"),
        "skipped": len(skipped) if isinstance(skipped, list) else skipped,
        "inputs": report.get("inputs") if isinstance(report.get("inputs"), dict) else {},
        "notes": [str(n) for n in report.get("notes", []) if isinstance(n, str | int | float)],
        "version": str(report.get("version", "?")),
    }


def _value(v: Any) -> str:
    """A metric's value as the report prints it; 'n/a' for None or anything not a number."""
    ok = isinstance(v, int | float) and not isinstance(v, bool)
    return format_value(float(v) if ok else None)
