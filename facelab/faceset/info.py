"""What is in a faceset: counts, sources, pose coverage and sharpness (``facelab faceset info``)."""

from __future__ import annotations

import io
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from facelab.faceset.readable import readable_faces
from facelab.io.atomic import write_atomic

POSE_EDGES = list(range(-90, 91, 15))  # degrees; 12 bins for yaw and for pitch
BAR_WIDTH = 40
TOP_SOURCES = 8
_EIGHTHS = " ▏▎▍▌▋▊▉█"


def faceset_info(folder: str | Path, unreadable: list[Path] | None = None) -> dict[str, Any]:
    """A JSON-ready summary of the readable faces in ``folder`` (see ``format_info`` for the human-readable form;
    faces that cannot be read are warned about and appended to ``unreadable``, when given).

    ``pose_histogram.yaw_pitch_counts[i][j]`` counts faces with yaw in bin i and pitch in bin j of ``edges``;
    angles beyond +-90 are counted in the outermost bins so the histogram always totals ``count``.
    """
    metas = [m for _, m in readable_faces(folder, [] if unreadable is None else unreadable)]
    yaw, pitch, roll, blur = (
        np.array([getattr(m, k) for m in metas], dtype=np.float64) for k in ("yaw", "pitch", "roll", "blur")
    )
    counts = pose_histogram(yaw, pitch)
    return {
        "folder": str(folder),
        "count": len(metas),
        "face_types": _tally(m.face_type for m in metas),
        "sizes": _tally(str(m.size) for m in metas),
        "sources": _tally(m.source_file for m in metas),
        "real": sum(not m.synthetic for m in metas),
        "synthetic": sum(bool(m.synthetic) for m in metas),  # generated faces (facelab.augment.sample)
        "frames": len({(m.source_file, m.frame_index) for m in metas}),
        "yaw": _stats(yaw),
        "pitch": _stats(pitch),
        "roll": _stats(roll),
        "blur_median": round(float(np.median(blur)), 2),
        "pose_histogram": {
            "edges": POSE_EDGES,
            "yaw_counts": counts.sum(1).tolist(),
            "pitch_counts": counts.sum(0).tolist(),
            "yaw_pitch_counts": counts.tolist(),
        },
        "detectors": _tally(m.detector or "?" for m in metas),
        "landmarkers": _tally(m.landmarker or "?" for m in metas),
    }


def pose_histogram(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """(12, 12) int counts, yaw bins x pitch bins, 15 degrees each over [-90, 90]."""
    e = np.asarray(POSE_EDGES, dtype=np.float64)
    h, _, _ = np.histogram2d(np.clip(yaw, e[0], e[-1]), np.clip(pitch, e[0], e[-1]), bins=[e, e])
    return h.astype(np.int64)


def format_info(info: dict[str, Any], ascii_only: bool | None = None) -> str:
    """``faceset_info`` as text, with a yaw histogram drawn in bar characters (``#`` where the console is not
    Unicode)."""
    if ascii_only is None:
        ascii_only = not _can_encode(_EIGHTHS, getattr(sys.stdout, "encoding", None))
    n = info["count"]
    srcs = info["sources"]
    shown = ", ".join(f"{Path(s).name} ({c})" for s, c in list(srcs.items())[:TOP_SOURCES])
    more = f", +{len(srcs) - TOP_SOURCES} more" if len(srcs) > TOP_SOURCES else ""
    lines = [
        f"faceset {info['folder']}: {n} faces ({n - info['synthetic']} real, {info['synthetic']} synthetic)",
        f"face type: {_join(info['face_types'])}; size: {_join(info['sizes'], ' px')}",
        f"from {info['frames']} frames of {len(srcs)} sources: {shown}{more}",
        f"detector: {_join(info['detectors'])}; landmarks: {_join(info['landmarkers'])}",
        f"{'':6}{'min':>8}{'median':>8}{'max':>8}",
        *(f"{k:6}" + "".join(f"{info[k][s]:8.1f}" for s in ("min", "median", "max")) for k in ("yaw", "pitch", "roll")),
        f"sharpness (blur) median: {info['blur_median']:.1f}",
        "yaw histogram (faces per 15 degrees):",
    ]
    edges = info["pose_histogram"]["edges"]
    counts = info["pose_histogram"]["yaw_counts"]
    top = max(counts) or 1
    for lo, hi, c in zip(edges[:-1], edges[1:], counts):
        lines.append(f"  {lo:4d}..{hi:3d} |{bar(c / top * BAR_WIDTH, ascii_only):<{BAR_WIDTH}} {c}")
    return "\n".join(lines)


def bar(length: float, ascii_only: bool = False) -> str:
    """A horizontal bar ``length`` cells long, in eighths of a cell; any non-zero length shows at least a sliver."""
    if length <= 0:
        return ""
    if ascii_only:
        return "#" * max(1, round(length))
    eighths = max(1, round(length * 8))
    return _EIGHTHS[-1] * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else "")


def plot_pose_histogram(folder: str | Path, png_path: str | Path, info: dict[str, Any] | None = None) -> None:
    """Write a PNG: yaw histogram (left) and yaw x pitch 2D histogram (right). ``info``: ``faceset_info(folder)``,
    if the caller has it (the faces are then not read, nor warned about, twice)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    info = faceset_info(folder) if info is None else info
    hist = info["pose_histogram"]
    edges = np.asarray(hist["edges"], dtype=np.float64)
    counts = np.asarray(hist["yaw_pitch_counts"])
    fig = Figure(figsize=(11, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)  # Agg explicitly: works headless, never touches pyplot's global state
    ax1, ax2 = fig.subplots(1, 2)
    ax1.bar(edges[:-1], hist["yaw_counts"], width=np.diff(edges), align="edge", color="tab:blue", edgecolor="white")
    ax1.set(xlabel="yaw (degrees)", ylabel="faces", xticks=edges, xlim=(edges[0], edges[-1]), title="yaw")
    mesh = ax2.pcolormesh(edges, edges, counts.T, cmap="viridis")  # rows of C are pitch bins
    for i, j in zip(*np.nonzero(counts)):
        ax2.text(
            (edges[i] + edges[i + 1]) / 2,
            (edges[j] + edges[j + 1]) / 2,
            str(counts[i, j]),
            ha="center",
            va="center",
            fontsize=7,
            color="black" if counts[i, j] > 0.6 * counts.max() else "white",  # readable on viridis' yellow end
        )
    ax2.set(xlabel="yaw (degrees)", ylabel="pitch (degrees)", xticks=edges, yticks=edges, title="yaw x pitch")
    ax2.set_aspect("equal")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", labelrotation=90)
    fig.colorbar(mesh, ax=ax2, label="faces")
    fig.suptitle(f"{info['folder']}: {info['count']} faces")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_atomic(Path(png_path), buf.getvalue())


def _tally(values: Iterable[str]) -> dict[str, int]:
    """Counts, most common first (ties by name), as a plain JSON-ready dict."""
    return dict(sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0])))


def _stats(v: np.ndarray) -> dict[str, float]:
    return {"min": round(float(v.min()), 2), "median": round(float(np.median(v)), 2), "max": round(float(v.max()), 2)}


def _join(tally: dict[str, int], unit: str = "") -> str:
    return ", ".join(f"{k}{unit} ({v})" for k, v in tally.items())


def _can_encode(text: str, encoding: str | None) -> bool:
    try:
        text.encode(encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True
