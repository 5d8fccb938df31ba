"""Preview images a user can look at: the sample grid and the loss curves (PNG bytes)."""

from __future__ import annotations

import io

import cv2
import numpy as np
import torch


def preview_grid_png(rows: list[torch.Tensor], labels: list[str], iteration: int) -> bytes:
    """One column per row tensor (N, 3, H, W in [0, 1]) - DFL's layout: each line is one sample, each column one
    view (src, src->src, dst, dst->dst, swap) - with a header naming the columns."""
    cols = [np.concatenate(list(_to_uint8(t)), axis=0) for t in rows]  # each (N*H, W, 3)
    grid = np.concatenate(cols, axis=1)
    h = rows[0].shape[2]
    w = rows[0].shape[3]
    header = np.full((28, grid.shape[1], 3), 255, np.uint8)
    for i, name in enumerate(labels):
        cv2.putText(
            header, name, (i * w + 4, 19), cv2.FONT_HERSHEY_SIMPLEX, min(0.5, w / 220), (0, 0, 0), 1, cv2.LINE_AA
        )
    footer = np.full((22, grid.shape[1], 3), 255, np.uint8)
    cv2.putText(footer, f"iteration {iteration}", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (80, 80, 80), 1, cv2.LINE_AA)
    img = np.concatenate([header, grid, footer], axis=0)
    del h
    ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def _to_uint8(t: torch.Tensor) -> np.ndarray:
    return (t.detach().float().clamp(0, 1).cpu().numpy().transpose(0, 2, 3, 1) * 255 + 0.5).astype(np.uint8)


def loss_curve_png(history: dict[str, list[float]], keys: tuple[str, ...]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5), dpi=100)
    for k in keys:
        v = np.asarray(history.get(k, []), dtype=np.float64)
        if not len(v):
            continue
        (raw,) = ax.plot(np.arange(1, len(v) + 1), v, lw=0.5, alpha=0.3)
        win = max(1, len(v) // 50)
        smooth = np.convolve(v, np.ones(win) / win, mode="valid")
        ax.plot(np.arange(win, len(v) + 1), smooth, lw=1.5, color=raw.get_color(), label=f"{k} (mean of {win})")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
