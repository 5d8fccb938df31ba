"""The self-contained report.html of ``facelab evaluate``: metric table, notes, per-frame plots (matplotlib, Agg)
and the frames least like the src identity, all images embedded as PNG data."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import cv2
import numpy as np

from facelab.evaluate import metrics as M
from facelab.evaluate.table import BIN_BARS, format_value, metric_rows

# (frame number, identity distance to src, swapped region, dst region): one thumbnail of the worst-frames strip
WorstFrame = tuple[int, float, np.ndarray, np.ndarray]


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _plots(rows: list[dict]) -> list[tuple[str, str]]:
    """(title, base64 PNG) of per-frame curves and histograms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = [r["frame"] for r in rows]
    out = []
    for title, keys in [
        ("Identity distance per frame", ["id_dist_src", "id_dist_dst"]),
        ("Pose error per frame (deg)", ["yaw_err", "pitch_err", "roll_err"]),
        ("Expression error per frame", ["expression_err"]),
        ("Gaze error per frame", ["gaze_err"]),
    ]:
        if keys[0] not in rows[0]:
            continue
        fig, ax = plt.subplots(figsize=(7, 2.6))
        for k in keys:
            ax.plot(f, [r[k] for r in rows], marker=".", label=k)
        if keys[0] == "id_dist_src":
            ax.axhline(M.SAME_PERSON, color="gray", ls="--", lw=1, label="same-person threshold")
        ax.set_xlabel("frame")
        ax.legend(fontsize=7)
        out.append((title, _png(fig)))
    for title, key in [
        ("Histogram: identity distance to src", "id_dist_src"),
        ("Histogram: expression error", "expression_err"),
    ]:
        fig, ax = plt.subplots(figsize=(4, 2.6))
        ax.hist([r[key] for r in rows], bins=min(30, max(5, len(rows) // 3)))
        ax.set_xlabel(key)
        out.append((title, _png(fig)))
    return out


def _bin_bars(bins: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """(title, base64 PNG): one bar chart per ``BIN_BARS`` metric over the bins; a bin without a value shows none."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(bins)
    out = []
    for key, title in BIN_BARS:
        values = [(bins[b].get(key) or {}).get("value") for b in names]
        if all(v is None for v in values):
            continue
        fig, ax = plt.subplots(figsize=(5.5, 2.6))
        ax.bar(range(len(names)), [v if v is not None else 0.0 for v in values], color="#4a7bb7")
        for i, (b, v) in enumerate(zip(names, values)):
            n = (bins[b].get(key) or {}).get("n", 0)
            ax.text(i, 0, "n/a" if v is None else f"n={n}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(names)), names, rotation=20, fontsize=7)
        ax.set_title(title, fontsize=9)
        out.append((f"Per bin: {title}", _png(fig)))
    return out


def _img_tag(rgb: np.ndarray, alt: str) -> str:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    data = base64.b64encode(buf.tobytes()).decode("ascii") if ok else ""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render_html(report: dict[str, Any], worst: list[WorstFrame]) -> str:
    """A self-contained page: metric table, notes, plots, worst frames (swapped | dst)."""
    table = "".join(
        f"<tr><td>{html.escape(label.strip())}</td><td>{format_value(v['value'])}</td><td>{v['n']}</td></tr>"
        for _, label, v in metric_rows(report)
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.get("notes", []))
    plots = "".join(
        f'<figure><img alt="{html.escape(t)}" src="data:image/png;base64,{b}"><figcaption>{html.escape(t)}'
        "</figcaption></figure>"
        for t, b in _plots(report["per_frame"])
    )
    bars = "".join(
        f'<figure><img alt="{html.escape(t)}" src="data:image/png;base64,{b}"><figcaption>{html.escape(t)}'
        "</figcaption></figure>"
        for t, b in _bin_bars(report.get("bins", {}))
    )
    worst_html = "".join(
        f"<figure>{_img_tag(np.hstack([s, d]), f'frame {i}')}<figcaption>frame {i}: distance to src {dist:.3f}"
        " (swapped | dst)</figcaption></figure>"
        for i, dist, s, d in worst
    )
    fr = report["frames"]
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>facelab evaluate</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px}}td:nth-child(2){{text-align:right}}
figure{{display:inline-block;margin:6px}}figcaption{{font-size:80%}}</style></head><body>
<h1>Face-swap evaluation</h1>
<p>{html.escape(report["inputs"]["swapped"])} &mdash; src {html.escape(report["inputs"]["src"])},
dst {html.escape(report["inputs"]["dst"])}; {fr["evaluated"]} frames evaluated, {len(fr["skipped"])} skipped;
metrics {html.escape(report["version"])}</p>
<table id="metrics"><tr><th>metric</th><th>value</th><th>N</th></tr>{table}</table>
<ul>{notes}</ul>
<h2>Per bin of the dst face</h2><div id="bins">{bars}</div>
<h2>Per frame</h2><div id="plots">{plots}</div>
<h2>Frames least like the src identity</h2><div id="worst">{worst_html}</div>
</body></html>
"""
