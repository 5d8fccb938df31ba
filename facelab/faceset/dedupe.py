"""Near-duplicate faces (``facelab faceset dedupe``): 64 px grayscale mean absolute difference below a threshold.

All pairs of 10 000 faces at 4096 values each would be 2e11 operations, so candidates go through exact lower
bounds first: the mean absolute difference of block-averaged images never exceeds that of the full images
(|mean(a - b)| <= mean|a - b| per block). A sweep over faces sorted by brightness (1 block), then 4x4 and 16x16
block means prune pairs before the full 64x64 test, so the pruning never loses a near-duplicate. The last two
levels run lazily, only between a kept face and its unclaimed candidates, so the faces of a long static shot are
not all compared with each other at full resolution.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from facelab.config import DedupeConfig
from facelab.errors import FacelabError
from facelab.faceset.readable import face_pixels, no_readable_faces, readable_faces
from facelab.faceset.sort import thread_map

SIDE = 64
_LEVELS = (4, 16)  # coarse block grids tried before the full 64x64 comparison
_EPS = 1e-5  # float32 slack so a lower bound never prunes a true pair
_BLOCK_ELEMS = 1 << 22  # ~16 MB of float32 per vectorised step


def find_duplicates(
    folder: str | Path, threshold: float = DedupeConfig.threshold, unreadable: list[Path] | None = None
) -> list[tuple[Path, Path]]:
    """(duplicate, kept) pairs, in name order of the duplicate. Faces that cannot be read take no part: they are
    warned about and appended to ``unreadable`` (when given).

    Faces closer than ``threshold`` (mean absolute difference of 64x64 grayscale in [0, 1]) are near-duplicates.
    The sharpest face (highest ``meta.blur``, then name order) is kept first and claims its near-duplicates; the
    next sharpest unclaimed face is kept next, and so on. So every duplicate is within the threshold of the face
    it names, no two kept faces are near-duplicates, and a slow drift across many frames is not collapsed into one.
    """
    if not 0 < threshold <= 1:
        raise FacelabError(f"--threshold {threshold:g}: must be in (0, 1]")
    unreadable = [] if unreadable is None else unreadable
    faces = readable_faces(folder, unreadable)
    imgs = thread_map(lambda p: face_pixels(p, unreadable, gray=True, side=SIDE), [p for p, _ in faces])
    ok = [i for i, im in enumerate(imgs) if im is not None]
    if not ok:
        raise no_readable_faces(folder, unreadable)
    paths = [faces[i][0] for i in ok]
    blur = np.array([faces[i][1].blur for i in ok], dtype=np.float64)
    x = np.stack([imgs[i] for i in ok]).astype(np.float32) / 255.0
    dup_of = claim_duplicates(len(paths), candidate_pairs(x, threshold), blur, verifier(x, threshold))
    return [(paths[d], paths[dup_of[d]]) for d in sorted(dup_of)]


def candidate_pairs(x: np.ndarray, threshold: float) -> np.ndarray:
    """(K, 2) pairs (i < j) that the cheap lower bounds (brightness, 4x4 block means) cannot rule out."""
    if len(x) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    return _sweep_pairs(_pool(x, 1)[:, 0], _pool(x, _LEVELS[0]), threshold + _EPS)


def claim_duplicates(
    n: int, pairs: np.ndarray, blur: np.ndarray, verify: Callable[[int, np.ndarray], np.ndarray] | None = None
) -> dict[int, int]:
    """{duplicate: kept} from candidate ``pairs``: sharpest first, ties in index (name) order.

    ``verify(i, js)`` returns the ``js`` that really are near ``i`` (default: all candidates are).
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    both = np.concatenate([pairs, pairs[:, ::-1]])
    both = both[np.argsort(both[:, 0], kind="stable")]
    nbrs = np.split(both[:, 1], np.searchsorted(both[:, 0], np.arange(1, n)))
    state = np.zeros(n, dtype=np.int8)  # 0 open, 1 kept, 2 duplicate
    dup_of: dict[int, int] = {}
    for i in sorted(range(n), key=lambda k: (-blur[k], k)):
        if state[i]:
            continue
        state[i] = 1
        js = nbrs[i][state[nbrs[i]] == 0]  # keepers and claimed faces are settled
        if verify is not None and len(js):
            js = verify(i, js)
        state[js] = 2
        dup_of.update(dict.fromkeys(js.tolist(), i))
    return dup_of


def verifier(x: np.ndarray, threshold: float) -> Callable[[int, np.ndarray], np.ndarray]:
    """The remaining exact tests for one face against its candidates: 16x16 block means, then all 64x64 pixels."""
    fine = _pool(x, _LEVELS[1])
    full = x.reshape(len(x), -1)

    def verify(i: int, js: np.ndarray) -> np.ndarray:
        js = js[np.abs(fine[js] - fine[i]).mean(1) < threshold + _EPS]
        return js[np.abs(full[js] - full[i]).mean(1, dtype=np.float64) < threshold]

    return verify


def _pool(x: np.ndarray, grid: int) -> np.ndarray:
    """(N, grid*grid) block means of (N, S, S) images; S must be a multiple of ``grid``."""
    n, s = len(x), x.shape[-1]
    k = s // grid
    return x.reshape(n, grid, k, grid, k).mean(axis=(2, 4)).reshape(n, grid * grid)


def _sweep_pairs(brightness: np.ndarray, feats: np.ndarray, limit: float) -> np.ndarray:
    """Pairs whose block-mean distance is below ``limit``, comparing each face only with faces whose mean
    brightness is within ``limit`` (faces sorted by brightness, so that is a contiguous window)."""
    order = np.argsort(brightness, kind="stable")
    b, f = brightness[order], feats[order]
    n, d = f.shape
    rows = max(1, min(256, n))
    out: list[np.ndarray] = []
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        hi = int(np.searchsorted(b, b[r1 - 1] + limit, side="right"))
        cols = max(1, _BLOCK_ELEMS // ((r1 - r0) * d))
        for c0 in range(r0, hi, cols):
            c1 = min(hi, c0 + cols)
            dist = np.abs(f[r0:r1, None, :] - f[None, c0:c1, :]).mean(-1)
            r, c = np.nonzero(dist < limit)
            r, c = r + r0, c + c0
            keep = c > r  # each unordered pair once, never a face with itself
            out.append(np.stack([order[r[keep]], order[c[keep]]], axis=1))
    pairs = np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)
    return np.sort(pairs, axis=1).astype(np.int64)
