"""The coverage heatmap PNG of ``facelab faceset coverage``: src real / dst / share difference per bin, thin bins
boxed. Counting lives in ``facelab.faceset.coverage``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from facelab.faceset.coverage import (
    GROUPS,
    MIN_DST,
    MOUTH_LABELS,
    PITCH_EDGES,
    SMILE_LABELS,
    THIN_FRACTION,
    YAW_EDGES,
    Coverage,
    populated_bins,
)
from facelab.io.atomic import write_atomic


def plot_coverage(cov: Coverage, png_path: str | Path, min_dst: int = MIN_DST, fraction: float = THIN_FRACTION) -> None:
    """Write a PNG: pose (top) and expression (bottom) heatmaps of src real / dst / dst share minus src share.

    Cells are annotated with counts, ``+N`` for synthetic src faces; thin bins are outlined in the third column
    with the number of src faces they lack.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    fig = Figure(figsize=(15, 9.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)  # Agg explicitly: headless, never touches pyplot's global state
    axes = fig.subplots(2, 3)
    thin = cov.thin_bins(min_dst=min_dst, fraction=fraction)
    rows, cols = populated_bins(cov.pose)
    ye = np.asarray(YAW_EDGES)[cols[0] : cols[-1] + 2]
    pe = np.asarray(PITCH_EDGES)[rows[0] : rows[-1] + 2]
    nm, ns = cov.expression["dst"].shape
    specs = [
        # (kind, counts, x edges, y edges, slice of the count arrays shown, x label, y label)
        ("pose", cov.pose, ye, pe, (slice(cols[0], cols[-1] + 1), slice(rows[0], rows[-1] + 1)), "yaw", "pitch"),
        (
            "expression",
            cov.expression,
            np.arange(nm + 1),
            np.arange(ns + 1),
            (slice(None), slice(None)),
            "mouth",
            "smile",
        ),
    ]
    t = cov.totals
    for r, (kind, counts, xe, ye_, sl, xl, yl) in enumerate(specs):
        src, syn, dst = (counts[g][sl] for g in GROUPS)
        share = dst / max(dst.sum(), 1) - src / max(src.sum(), 1)
        panels = [
            (src, f"src real ({t['src']}; +N synthetic)", "viridis", None),
            (dst, f"dst ({t['dst']})", "viridis", None),
            (share * 100, "dst share - src share (points); thin bins boxed", "RdBu_r", np.abs(share).max() * 100 or 1),
        ]
        for c, (data, title, cmap, lim) in enumerate(panels):
            ax = axes[r, c]
            kw = {"vmin": -lim, "vmax": lim} if lim is not None else {}
            mesh = ax.pcolormesh(xe, ye_, data.T, cmap=cmap, **kw)  # rows of C are the second index
            fig.colorbar(mesh, ax=ax, label="faces" if lim is None else "percentage points")
            for i, j in np.ndindex(data.shape):
                if not (src[i, j] or dst[i, j] or syn[i, j]):
                    continue
                text = f"{data[i, j]:+.1f}" if lim is not None else str(int(data[i, j]))
                if c == 0 and syn[i, j]:
                    text += f"\n+{syn[i, j]}"
                # readable on both ends of the colormap: white on dark viridis and on saturated red/blue
                dark = abs(data[i, j]) > 0.6 * lim if lim is not None else data[i, j] < 0.6 * max(data.max(), 1)
                ax.text(
                    (xe[i] + xe[i + 1]) / 2,
                    (ye_[j] + ye_[j + 1]) / 2,
                    text,
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if dark else "black",
                )
            ax.set(xlabel=xl, ylabel=yl, title=f"{kind}: {title}")
            if kind == "pose":
                ax.set(xticks=xe, yticks=ye_)
                ax.tick_params(axis="x", labelrotation=90)
            else:
                ax.set(xticks=np.arange(nm) + 0.5, yticks=np.arange(ns) + 0.5)
                ax.set_xticklabels(MOUTH_LABELS)
                ax.set_yticklabels(SMILE_LABELS)
            if c == 2:
                offset = (sl[0].start or 0, sl[1].start or 0)
                for b in thin:
                    if b.kind != kind:
                        continue
                    i, j = b.index[0] - offset[0], b.index[1] - offset[1]
                    ax.add_patch(
                        Rectangle((xe[i], ye_[j]), xe[i + 1] - xe[i], ye_[j + 1] - ye_[j], fill=False, lw=2, ec="k")
                    )
                    # two short lines: "need 206" on one line runs into the next cell at this font size
                    ax.text(
                        xe[i],
                        ye_[j + 1],
                        f"need\n{b.deficit}",
                        ha="left",
                        va="top",
                        fontsize=7,
                        fontweight="bold",
                        bbox={"fc": "white", "ec": "none", "alpha": 0.75, "pad": 1.0},  # legible on dark cells
                    )
    fig.suptitle(f"coverage of {cov.src_name} against {cov.dst_name}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_atomic(Path(png_path), buf.getvalue())
