"""How well a source faceset covers the poses and expressions of a destination (``facelab faceset coverage``).

A swap model only learns the src faces it is shown: a dst frame whose pose or expression has few src examples comes
out blurred or wrong. This module bins both facesets by head pose (yaw x pitch) and by expression (mouth opening x
smile), lists the *thin bins* (dst has faces there, src has too few), and counts the synthetic faces
(``FaceMeta.synthetic``, see ``facelab.augment.sample``) that went into each bin. The thin-bin list is the target
that ``sample_into_faceset(..., fill_poses=True)`` fills.

Expression features (``expression_features``) are measured on landmarks *frontalised* against the 3D mean face:
a scaled-orthographic fit of the rigid points (nose, eye corners) gives the head rotation, and each point's offset
from the rotated mean face is rotated back into the face plane. A turned or tilted head then reads the same as a
frontal one (within 0.02 on the mean face at +-45 yaw / +-25 pitch), where raw 2D ratios drift by as much as a
smile (a 20 degree pitch moves the mouth corners against the protruding lip centre by ~0.07 IOD).

The heatmap PNG is drawn by ``facelab.faceset.coverage_plot``; this module only counts (and prints).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facelab.config import CoverageConfig
from facelab.faceset.info import POSE_EDGES, pose_histogram
from facelab.faceset.meta import FaceMeta
from facelab.geometry.landmarks68 import MEAN_FACE_3D

# Pose bins: the 15-degree grid of ``faceset info`` so both commands name the same bins.
YAW_EDGES: tuple[float, ...] = tuple(float(e) for e in POSE_EDGES)
PITCH_EDGES: tuple[float, ...] = YAW_EDGES
# Expression bins: inner edges; the outer bins are open-ended. In inter-ocular distances (IOD, eye centres).
# Mouth: closed < 0.05 (lips together; dlib's inner-lip points still gap a little), parted, open, wide (a scream
# or "O" reads 0.42-0.44 on the expr_* photos of ../shared/data).
MOUTH_EDGES: tuple[float, ...] = (0.05, 0.15, 0.30)
MOUTH_LABELS: tuple[str, ...] = ("closed", "parted", "open", "wide")
# Smile: neutral faces read -0.05..0.02, a closed-lip smile ~0.04, a broad (teeth) smile ~0.10 on the identities/
# and package photos.
SMILE_EDGES: tuple[float, ...] = (0.03, 0.07)
SMILE_LABELS: tuple[str, ...] = ("none", "slight", "broad")
# Thin bin: dst holds at least MIN_DST faces there and src real holds less than THIN_FRACTION of dst's share.
MIN_DST = CoverageConfig.min_dst
THIN_FRACTION = CoverageConfig.fraction
GROUPS = ("src", "synthetic", "dst")  # src = real src faces; synthetic = generated faces in the src faceset

# Rigid points for the head-rotation fit: nose bridge + base and the four eye corners. Brows, lids, lips and jaw
# move with expression (the jaw also follows the silhouette) and would pull the fit.
_RIGID = np.r_[27:36, 36, 39, 42, 45]
# As the jaw opens the mouth corners drop about 0.3 of the inner-lip gap (fit on expr_surprised, expr_scream and
# person_p4's open-mouth photo); measuring the corners against the point that far down the lip gap keeps an
# open mouth from reading as a frown and a laugh from reading as neutral.
_CORNER_DROP = 0.3
_INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))  # upper, lower inner-lip points (iBUG)


def frontalize(landmarks68: np.ndarray) -> np.ndarray:
    """(68, 2) landmarks in the mean face's frontal 2D frame (outer eye corners one unit apart).

    Scaled-orthographic fit ``p ~ s R[:2] X + t`` of the rigid points to ``MEAN_FACE_3D``; each point's residual
    is taken as an in-plane (x, y) deformation of the face and rotated back with the inverse of R's 2x2 block.
    """
    p = np.asarray(landmarks68, dtype=np.float64)
    x = MEAN_FACE_3D.astype(np.float64)
    xr, pr = x[_RIGID], p[_RIGID]
    a, *_ = np.linalg.lstsq(xr - xr.mean(0), pr - pr.mean(0), rcond=None)  # (3, 2): affine camera
    u, s, vt = np.linalg.svd(a.T, full_matrices=False)
    r2 = u @ vt  # nearest 2x3 with orthonormal rows: the rotation's first two rows
    scale = float(s.mean())
    t = pr.mean(0) - scale * r2 @ xr.mean(0)
    resid = (p - t) / max(scale, 1e-9) - x @ r2.T
    b = r2[:, :2]
    if abs(np.linalg.det(b)) < 0.05:  # near-profile: the face plane is edge-on, nothing to rotate back
        return np.full((68, 2), np.nan)
    return x[:, :2] + resid @ np.linalg.inv(b).T


def expression_features(landmarks68: np.ndarray) -> tuple[float, float]:
    """(mouth_open, smile) of one face's 68 iBUG landmarks (any image frame), both in inter-ocular distances.

    * ``mouth_open``: mean gap of the inner lips (61-67, 62-66, 63-65); ~0 closed, ~0.2 talking, ~0.4 a scream.
    * ``smile``: how far the mouth corners (48, 54) sit above the inner-lip line, measured at 0.3 of the
      lip gap down from the upper inner lip (see ``_CORNER_DROP``); ~0 neutral, > 0.07 a broad smile, < 0 corners
      pulled down.

    Both are measured on ``frontalize``d points, so head pose barely moves them. NaN, NaN for degenerate input.
    """
    p = np.asarray(landmarks68, dtype=np.float64)
    if p.shape != (68, 2) or not np.all(np.isfinite(p)):
        return math.nan, math.nan
    q = frontalize(p)
    iod = float(np.linalg.norm(q[42:48].mean(0) - q[36:42].mean(0)))
    if not np.all(np.isfinite(q)) or iod < 1e-6:
        return math.nan, math.nan
    gaps = [q[lo, 1] - q[up, 1] for up, lo in _INNER_LIP_PAIRS]  # y grows downwards
    mouth_open = float(np.mean(gaps)) / iod
    line = q[62, 1] + _CORNER_DROP * (q[66, 1] - q[62, 1])
    smile = float(line - (q[48, 1] + q[54, 1]) / 2) / iod
    return mouth_open, smile


def expression_bin(mouth_open: float, smile: float) -> tuple[int, int] | None:
    """(mouth bin, smile bin) of one face, or None when its features could not be measured."""
    if not (math.isfinite(mouth_open) and math.isfinite(smile)):
        return None
    return int(np.searchsorted(MOUTH_EDGES, mouth_open, side="right")), int(
        np.searchsorted(SMILE_EDGES, smile, side="right")
    )


def pose_bin(yaw: float, pitch: float) -> tuple[int, int]:
    """(yaw bin, pitch bin) on the 15-degree grid; angles beyond +-90 fall in the outermost bins."""
    n = len(YAW_EDGES) - 1

    def one(v: float) -> int:
        return int(min(n - 1, max(0, np.searchsorted(YAW_EDGES, v, side="right") - 1)))

    return one(yaw), one(pitch)


def pose_label(i: int, j: int) -> str:
    return f"yaw {YAW_EDGES[i]:+.0f}..{YAW_EDGES[i + 1]:+.0f}, pitch {PITCH_EDGES[j]:+.0f}..{PITCH_EDGES[j + 1]:+.0f}"


def expression_label(i: int, j: int) -> str:
    return f"mouth {MOUTH_LABELS[i]}, smile {SMILE_LABELS[j]}"


@dataclass
class ThinBin:
    """A bin where dst has faces and src has too few: ``deficit`` more src faces would match dst's share."""

    kind: str  # "pose" | "expression"
    index: tuple[int, int]  # (yaw, pitch) or (mouth, smile) bin
    label: str
    dst: int
    src: int  # real src faces
    synthetic: int
    target: float  # src faces the bin would hold at dst's share of the real src count
    deficit: int  # ceil(target - src [- synthetic when counted])

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "index": list(self.index), "target": round(self.target, 2)}


@dataclass
class Coverage:
    """Counts per bin for real src faces, synthetic src faces and dst faces.

    ``pose[g]`` is (12, 12), yaw bin x pitch bin on ``YAW_EDGES``/``PITCH_EDGES``; ``expression[g]`` is (4, 3),
    mouth bin x smile bin. ``unmeasured[g]`` counts faces whose expression could not be measured (not in
    ``expression``; always in ``pose``).
    """

    pose: dict[str, np.ndarray]
    expression: dict[str, np.ndarray]
    totals: dict[str, int]
    unmeasured: dict[str, int] = field(default_factory=dict)
    src_name: str = "src"
    dst_name: str = "dst"

    def thin_bins(
        self,
        kind: str = "both",
        min_dst: int = MIN_DST,
        fraction: float = THIN_FRACTION,
        with_synthetic: bool = False,
    ) -> list[ThinBin]:
        """Bins where dst has >= ``min_dst`` faces and src has fewer than ``fraction`` x the faces it would hold
        at dst's share, most deficient first.

        Shares, not counts, are compared, so a 1000-face src against a 350-face dst is judged fairly; the target is
        dst's share of the real src count. With ``with_synthetic`` the synthetic faces count as src (what is still
        missing after augmentation); otherwise thin-ness is judged on real faces only.
        """
        kinds = ("pose", "expression") if kind == "both" else (kind,)
        n_src = self.totals["src"]
        out: list[ThinBin] = []
        for k in kinds:
            if k not in ("pose", "expression"):
                raise ValueError(f"unknown bin kind {k!r} (pose, expression or both)")
            counts = self.pose if k == "pose" else self.expression
            dst, src, syn = counts["dst"], counts["src"], counts["synthetic"]
            n_dst = int(dst.sum())
            if n_dst == 0:
                continue
            label = pose_label if k == "pose" else expression_label
            for i, j in zip(*np.nonzero(dst >= max(1, min_dst))):
                target = dst[i, j] / n_dst * n_src
                have = src[i, j] + (syn[i, j] if with_synthetic else 0)
                if have < fraction * target:
                    out.append(
                        ThinBin(
                            k,
                            (int(i), int(j)),
                            label(int(i), int(j)),
                            int(dst[i, j]),
                            int(src[i, j]),
                            int(syn[i, j]),
                            float(target),
                            math.ceil(target - have),
                        )
                    )
        return sorted(out, key=lambda b: (-b.deficit, b.kind, b.index))

    def to_dict(self, min_dst: int = MIN_DST, fraction: float = THIN_FRACTION) -> dict[str, Any]:
        """JSON-ready counts (arrays indexed like ``pose``/``expression``) and the thin bins."""
        return {
            "src": self.src_name,
            "dst": self.dst_name,
            "totals": self.totals,
            "unmeasured": self.unmeasured,
            "yaw_edges": list(YAW_EDGES),
            "pitch_edges": list(PITCH_EDGES),
            "mouth_edges": list(MOUTH_EDGES),
            "smile_edges": list(SMILE_EDGES),
            "pose": {g: self.pose[g].tolist() for g in GROUPS},
            "expression": {g: self.expression[g].tolist() for g in GROUPS},
            "min_dst": min_dst,
            "fraction": fraction,
            "thin_bins": [b.to_dict() for b in self.thin_bins(min_dst=min_dst, fraction=fraction)],
        }


def coverage(
    src_metas: Iterable[FaceMeta], dst_metas: Iterable[FaceMeta], src_name: str = "src", dst_name: str = "dst"
) -> Coverage:
    """Bin the faces of both facesets; src faces flagged ``synthetic`` are counted apart from the real ones."""
    src = list(src_metas)
    groups = {
        "src": [m for m in src if not m.synthetic],
        "synthetic": [m for m in src if m.synthetic],
        "dst": list(dst_metas),  # every dst face is a face to be swapped, generated or not
    }
    pose, expr, unmeasured = {}, {}, {}
    for g, metas in groups.items():
        yaw = np.array([m.yaw for m in metas], dtype=np.float64)
        pitch = np.array([m.pitch for m in metas], dtype=np.float64)
        pose[g] = pose_histogram(yaw, pitch)
        e = np.zeros((len(MOUTH_EDGES) + 1, len(SMILE_EDGES) + 1), dtype=np.int64)
        missing = 0
        for m in metas:
            b = expression_bin(*expression_features(m.landmarks))
            if b is None:
                missing += 1
            else:
                e[b] += 1
        expr[g], unmeasured[g] = e, missing
    totals = {g: len(v) for g, v in groups.items()}
    return Coverage(pose, expr, totals, unmeasured, src_name, dst_name)


def folder_coverage(
    src: str | Path | Sequence[str | Path], dst: str | Path, unreadable: list[Path] | None = None
) -> Coverage:
    """``coverage`` of the readable faces of the src folder (or folders, pooled) and the dst folder (FacesetError
    naming the folder if one is missing or has none; faces that cannot be read are warned about and appended to
    ``unreadable``, when given)."""
    from facelab.faceset.readable import readable_faces

    unreadable = [] if unreadable is None else unreadable
    srcs = [src] if isinstance(src, (str, Path)) else list(src)
    src_faces = [f for folder in srcs for f in readable_faces(folder, unreadable)]
    dst_faces = readable_faces(dst, unreadable)
    name = " + ".join(str(s) for s in srcs)
    return coverage((m for _, m in src_faces), (m for _, m in dst_faces), src_name=name, dst_name=str(dst))


# --- text ----------------------------------------------------------------------------------------------------------


def format_coverage(cov: Coverage, min_dst: int = MIN_DST, fraction: float = THIN_FRACTION) -> str:
    """Both grids (cells ``src/dst``, ``+N`` synthetic) over the populated range, then the thin bins by deficit."""
    t = cov.totals
    lines = [
        f"src {cov.src_name}: {t['src'] + t['synthetic']} faces ({t['src']} real, {t['synthetic']} synthetic)",
        f"dst {cov.dst_name}: {t['dst']} faces",
        "",
        "pose: faces per yaw (columns) x pitch (rows) bin, degrees; cell = src real/dst, +N synthetic",
    ]
    yaw_labels = [f"{YAW_EDGES[i]:+.0f}..{YAW_EDGES[i + 1]:+.0f}" for i in range(len(YAW_EDGES) - 1)]
    pitch_labels = [f"{PITCH_EDGES[j]:+.0f}..{PITCH_EDGES[j + 1]:+.0f}" for j in range(len(PITCH_EDGES) - 1)]
    rows, cols = populated_bins(cov.pose)
    # pitch up at the top, as on the face
    lines += _grid(cov.pose, "pitch\\yaw", [pitch_labels[j] for j in rows[::-1]], rows[::-1], cols, yaw_labels, True)
    lines += ["", "expression: faces per mouth (rows) x smile (columns) bin; cell = src real/dst, +N synthetic"]
    nm, ns = cov.expression["dst"].shape
    lines += _grid(cov.expression, "mouth\\smile", list(MOUTH_LABELS), list(range(nm)), list(range(ns)), SMILE_LABELS)
    if any(cov.unmeasured.values()):
        lines.append("  expression not measurable (degenerate landmarks): " + _counts(cov.unmeasured))
    thin = cov.thin_bins(min_dst=min_dst, fraction=fraction)
    lines += [
        "",
        f"thin bins (dst has >= {min_dst} faces, src real < {fraction:.0%} of dst's share), most deficient first:",
    ]
    if not thin:
        lines.append("  none: src covers every bin dst uses")
    n_src, n_dst = max(t["src"], 1), max(t["dst"], 1)
    for b in thin:
        syn = f", +{b.synthetic} synthetic" if b.synthetic else ""
        still = max(0, b.deficit - b.synthetic)
        lines.append(
            f"  {b.kind:10} {b.label:36} dst {b.dst:5} ({b.dst / n_dst:6.1%})  src {b.src:5} ({b.src / n_src:6.1%})"
            f"  needs {b.deficit}{syn}{f' ({still} still missing)' if b.synthetic else ''}"
        )
    return "\n".join(lines)


def populated_bins(counts: dict[str, np.ndarray]) -> tuple[list[int], list[int]]:
    """Pitch rows and yaw columns that hold any face in any group (+1 bin of margin), in ascending order."""
    total = sum(counts[g] for g in GROUPS)
    yi, pj = np.nonzero(total)
    if not len(yi):
        return [len(PITCH_EDGES) // 2 - 1], [len(YAW_EDGES) // 2 - 1]
    n = total.shape[0]
    return (
        list(range(max(0, pj.min() - 1), min(n, pj.max() + 2))),
        list(range(max(0, yi.min() - 1), min(n, yi.max() + 2))),
    )


def _grid(
    counts: dict[str, np.ndarray],
    corner: str,
    row_labels: list[str],
    rows: list[int],
    cols: list[int],
    col_labels: Iterable[str],
    transpose: bool = False,
) -> list[str]:
    """Text table of ``counts`` cells; ``transpose`` when the arrays are indexed [column, row] (yaw x pitch)."""
    col_labels = list(col_labels)

    def cell(r: int, c: int) -> str:
        i, j = (c, r) if transpose else (r, c)
        s, d, y = counts["src"][i, j], counts["dst"][i, j], counts["synthetic"][i, j]
        if not (s or d or y):
            return "."
        return f"{s}/{d}" + (f"+{y}" if y else "")

    cells = [[cell(r, c) for c in cols] for r in rows]
    width = max([len(x) for row in cells for x in row] + [len(col_labels[c]) for c in cols]) + 2
    lead = max(len(corner), *(len(x) for x in row_labels)) + 2
    out = [f"  {corner:<{lead}}" + "".join(f"{col_labels[c]:>{width}}" for c in cols)]
    for label, row in zip(row_labels, cells):
        out.append(f"  {label:<{lead}}" + "".join(f"{x:>{width}}" for x in row))
    return out


def _counts(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items())
