"""The report's metric table: which metrics are shown, in which order, under which labels, and how a value prints.

Shared by the console summary (``facelab.evaluate.report``) and the HTML page (``facelab.evaluate.page``), so the
two list the same rows.
"""

from __future__ import annotations

from typing import Any

# (metric key in report["metrics"], label); a metric missing from a report (gaze, FID) is left out.
METRIC_LABELS: tuple[tuple[str, str], ...] = (
    ("identity_transfer", "identity transfer (0 dst blurred .. 1 src)"),
    ("id_dist_src", "identity distance to src (lower=src)"),
    ("id_dist_dst", "identity distance to dst"),
    ("id_frac_src", "frames read as src (< 0.6)"),
    ("id_retrieval", "ID retrieval top-1"),
    ("pose_err_l2", "pose error L2 (deg)"),
    ("pose_err_yaw", "  yaw (deg)"),
    ("pose_err_pitch", "  pitch (deg)"),
    ("pose_err_roll", "  roll (deg)"),
    ("expression_err", "expression error (eye dist.)"),
    ("eye_follow", "eye openness follows dst (r)"),
    ("mouth_follow", "mouth openness follows dst (r)"),
    ("gaze_err", "gaze error (deg)"),
    ("flicker_ratio", "flicker ratio (1 = as dst)"),
    ("landmark_jitter_ratio", "landmark jitter ratio"),
    ("sharpness_ratio", "sharpness / src"),
    ("fid_src", "FID src vs swapped"),
    ("kid_src", "KID src vs swapped"),
    ("fid_dst", "FID dst vs swapped (the seed's)"),
    ("kid_dst", "KID dst vs swapped"),
)
# the per-bin bars of the page: metrics where a bin's value tells most about where a swap fails
BIN_BARS: tuple[tuple[str, str], ...] = (
    ("identity_transfer", "identity transfer"),
    ("gaze_err", "gaze error (deg)"),
    ("pose_err_l2", "pose error (deg)"),
    ("expression_err", "expression error"),
    ("kid_dst", "KID dst vs swapped"),
)


def format_value(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def metric_rows(report: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(key, label, metric) of every metric of ``report`` that the table shows, in table order."""
    m = report["metrics"]
    return [(k, label, m[k]) for k, label in METRIC_LABELS if k in m]
