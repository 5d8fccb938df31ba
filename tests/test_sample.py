"""Sampling a generator into a faceset, with stand-in generators built from real photos (Grace Hopper, the astronaut)
and from noise: detection, identity filtering, synthetic metadata, resume without duplicates, thin-bin filling."""

from __future__ import annotations

import dataclasses
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from facelab.augment.reextract import find_generated_face
from facelab.augment.sample import Candidate, Generate, _FillPlan, sample_into_faceset
from facelab.config import ExtractConfig
from facelab.errors import FacelabError
from facelab.extract.pipeline import extract
from facelab.faces.detect import Box, Detector
from facelab.faces.identity import FaceDescriber
from facelab.faceset.coverage import folder_coverage, pose_bin, pose_label
from facelab.faceset.index import load_metas
from facelab.faceset.info import faceset_info
from facelab.faceset.meta import FaceMeta, embed
from facelab.faceset.store import read_face, read_meta, write_face
from facelab.geometry.facetype import transform_matrix
from facelab.geometry.pose import head_pose
from facelab.io.atomic import write_atomic

RES = 128  # generated image side; the faceset is extracted at 128 px too


def photo_generator(photo: np.ndarray, finder, res: int = RES) -> Generate:
    """A stand-in for a trained generator: the photo's whole-face crop, jittered per seed (rotation, scale, shift,
    exposure) the way a generator's samples differ, deterministic in the seed."""
    pts = finder.find(photo)[0].points
    base = np.vstack([transform_matrix(pts, res, "whole_face"), [0, 0, 1]])

    def generate(seeds: Sequence[int], psi: float) -> np.ndarray:
        out = []
        for s in seeds:
            rng = np.random.default_rng(s)
            j = cv2.getRotationMatrix2D((res / 2, res / 2), rng.uniform(-4, 4), rng.uniform(0.96, 1.04))
            j[:, 2] += rng.uniform(-3, 3, 2)
            img = cv2.warpAffine(photo, j @ base, (res, res), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
            out.append(np.clip(img * rng.uniform(0.9, 1.1), 0, 255).astype(np.uint8))
        return np.stack(out)

    return generate


def noise_generator(seeds: Sequence[int], psi: float) -> np.ndarray:
    """What an untrained generator gives: smooth colour noise, never a face."""
    out = []
    for s in seeds:
        small = np.random.default_rng(s).uniform(0, 255, (8, 8, 3)).astype(np.uint8)
        out.append(cv2.resize(small, (RES, RES), interpolation=cv2.INTER_CUBIC))
    return np.stack(out)


@pytest.fixture(scope="module")
def describer() -> FaceDescriber:
    return FaceDescriber()


@pytest.fixture(scope="module")
def hopper_gen(hopper, finder) -> Generate:
    return photo_generator(hopper, finder)


@pytest.fixture(scope="module")
def master(tmp_path_factory, hopper_gen) -> Path:
    """A real faceset of Grace Hopper: three photos (jittered crops, as a video would give) extracted at 128 px."""
    photos = tmp_path_factory.mktemp("photos")
    for i, img in enumerate(hopper_gen([100, 101, 102], 1.0)):
        big = cv2.copyMakeBorder(cv2.resize(img, (256, 256)), 64, 64, 64, 64, cv2.BORDER_REFLECT)
        cv2.imwrite(str(photos / f"hopper{i}.png"), cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
    out = tmp_path_factory.mktemp("faceset") / "hopper"
    assert extract(photos, out, ExtractConfig(size=RES)).faces_written == 3
    return out


@pytest.fixture
def fs(master, tmp_path) -> Path:
    return Path(shutil.copytree(master, tmp_path / "fs"))


def _sample(gen: Generate, folder: Path, n: int, finder, describer, **kw) -> object:
    return sample_into_faceset(
        gen, folder, n, generator_id="test", finder=finder, describer=describer, progress=False, **kw
    )


def _synthetic(folder: Path) -> list[Path]:
    return sorted(folder.glob("synthetic_*"))


# --- keep / discard ------------------------------------------------------------------------------------------------


def test_generated_faces_of_the_person_are_kept_and_flagged(fs, hopper_gen, finder, describer):
    rep = _sample(hopper_gen, fs, 3, finder, describer, truncation=0.5)
    assert (rep.generated, rep.kept, rep.no_face, rep.wrong_identity, rep.not_needed) == (3, 3, 0, 0, 0)
    assert rep.stopped == "n reached" and rep.next_seed == 3 and rep.kept_seeds == [0, 1, 2]
    names = [p.name for p in _synthetic(fs)]
    assert names == [f"synthetic_test_{s:06d}.jpg" for s in range(3)] == [Path(f).name for f in rep.files]
    assert len(rep.identity_distances) == 3 and max(rep.identity_distances) < 0.3  # the same person
    assert sum(v for k, v in rep.per_bin.items() if k.startswith("pose")) == 3
    assert "3 synthetic faces added" in rep.summary() and rep.rate > 0

    img, meta = read_face(fs / names[1])
    assert img.shape == (RES, RES, 3) and meta.synthetic is True
    assert meta.face_type == "whole_face" and meta.size == RES
    assert meta.source_file == "generator:test" and meta.source_size == (RES, RES) and meta.frame_index == 1
    assert set(meta.extra) >= {"generator", "seed", "truncation", "identity_distance"}
    assert meta.extra["confirmed_by"] == "dlib-mmod" and meta.extra["confirm_score"] > 0  # the second opinion
    assert meta.extra["generator"] == "test" and meta.extra["seed"] == 1 and meta.extra["truncation"] == 0.5
    assert meta.extra["identity_distance"] == pytest.approx(rep.identity_distances[1], abs=1e-4)
    # landmarks and pose are filled as extraction fills them
    assert meta.landmarks.shape == (68, 2) and np.all((meta.landmarks > 0) & (meta.landmarks < RES))
    assert (meta.yaw, meta.pitch, meta.roll) == pytest.approx(head_pose(meta.landmarks, (RES, RES)), abs=0.01)
    assert meta.detector == "mediapipe" and meta.landmarker == "dlib68+refine" and meta.blur > 0
    # the crop of the generated image sits where the metadata says
    crop = cv2.warpAffine(hopper_gen([1], 0.5)[0], meta.transform, (RES, RES), borderMode=cv2.BORDER_REPLICATE)
    assert np.abs(crop.astype(int) - img.astype(int)).mean() < 8  # JPEG

    info = faceset_info(fs)
    assert (info["count"], info["real"], info["synthetic"]) == (6, 3, 3)
    assert folder_coverage(fs, fs).totals == {"src": 3, "synthetic": 3, "dst": 6}


def test_rerun_resumes_and_never_duplicates(fs, hopper_gen, finder, describer):
    _sample(hopper_gen, fs, 2, finder, describer)
    before = {p.name: p.stat().st_mtime_ns for p in _synthetic(fs)}
    again = _sample(hopper_gen, fs, 2, finder, describer)
    assert (again.existing, again.generated, again.kept, again.files) == (2, 0, 0, [])
    assert {p.name: p.stat().st_mtime_ns for p in _synthetic(fs)} == before
    more = _sample(hopper_gen, fs, 4, finder, describer)  # raising n adds only the missing faces
    assert (more.existing, more.kept, more.kept_seeds) == (2, 2, [2, 3])
    assert len(_synthetic(fs)) == 4 and len(load_metas(fs)) == 7


def test_another_person_is_rejected(fs, astronaut, finder, describer):
    rep = _sample(photo_generator(astronaut, finder), fs, 2, finder, describer, candidates=2)
    assert (rep.generated, rep.wrong_identity, rep.kept) == (4, 4, 0)
    assert rep.stopped == "candidate budget spent" and min(rep.identity_distances) > 0.6
    assert not _synthetic(fs)
    # ... unless the identity threshold is loosened past her distance
    loose = _sample(photo_generator(astronaut, finder), fs, 1, finder, describer, min_identity=0.95)
    assert loose.kept == 1


def test_images_without_a_face_are_discarded(fs, finder, describer):
    assert find_generated_face(noise_generator([0], 0.7)[0], finder) is None
    rep = _sample(noise_generator, fs, 2, finder, describer, candidates=3, batch=4)
    assert (rep.generated, rep.no_face, rep.kept, rep.identity_distances) == (6, 6, 0, [])
    assert rep.stopped == "candidate budget spent" and not _synthetic(fs)


class _Elsewhere(Detector):
    """A second detector that sees a face, but not where the first one did."""

    name = "elsewhere"

    def detect(self, image: np.ndarray) -> list[Box]:
        return [Box(0, 0, 12, 12, 0.99)]


def test_a_face_the_second_detector_does_not_confirm_is_discarded(fs, hopper_gen, finder, describer):
    rep = _sample(hopper_gen, fs, 2, finder, describer, candidates=1, confirm=_Elsewhere())
    assert (rep.generated, rep.not_confirmed, rep.kept) == (2, 2, 0) and not _synthetic(fs)
    assert len(rep.identity_distances) == 2 and "2 not a face to elsewhere" in rep.summary()
    trusting = _sample(hopper_gen, fs, 1, finder, describer, confirm=None)  # the first detector alone
    assert trusting.kept == 1 and "not a face to" not in trusting.summary()
    assert "confirmed_by" not in read_face(_synthetic(fs)[0])[1].extra
    with pytest.raises(FacelabError, match="second detector: unknown detector"):
        _sample(hopper_gen, fs, 1, finder, describer, confirm="nope")


def test_bad_arguments_and_generator_output(fs, hopper_gen, finder, describer):
    with pytest.raises(FacelabError, match="dst faceset"):
        _sample(hopper_gen, fs, 1, finder, describer, fill_poses=True)
    with pytest.raises(FacelabError, match="generator id"):
        sample_into_faceset(hopper_gen, fs, 1, generator_id="a/b", progress=False)
    with pytest.raises(FacelabError, match="expected uint8"):
        _sample(lambda seeds, psi: np.zeros((len(seeds), RES, RES, 3), np.float32), fs, 1, finder, describer)
    with pytest.raises(FacelabError, match="no such faceset folder"):
        _sample(hopper_gen, fs / "missing", 1, finder, describer)
    assert not _synthetic(fs)


# --- filling thin bins ---------------------------------------------------------------------------------------------


def _set_pose(path: Path, yaw: float, pitch: float) -> None:
    write_atomic(path, embed(path.read_bytes(), dataclasses.replace(read_meta(path), yaw=yaw, pitch=pitch)))


def test_fill_poses_keeps_only_faces_for_thin_bins(fs, tmp_path, hopper_gen, finder, describer):
    # where do the generator's first six seeds land? (a plain run into a scratch copy tells)
    probe = Path(shutil.copytree(fs, tmp_path / "probe"))
    _sample(hopper_gen, probe, 6, finder, describer)
    bins = {m.extra["seed"]: pose_bin(m.yaw, m.pitch) for _, m in load_metas(probe) if m.synthetic}
    target, hits = Counter(bins.values()).most_common(1)[0]
    assert hits >= 2, bins  # (here seeds 2 and 4 land in neighbouring bins: the fill must pass them over)
    expected = sorted(s for s, b in bins.items() if b == target)[:2]

    # src: its three real faces moved to +50 yaw; dst: half its faces there, half in the generator's bin, which
    # makes that bin thin with a deficit of 2 (dst share 1/2 of 3 real src faces = 1.5, rounded up)
    for p, _ in load_metas(fs):
        _set_pose(p, 50.0, 5.0)
    dst = tmp_path / "dst"
    dst.mkdir()
    real_meta = load_metas(fs)[0][1]
    for i in range(20):
        yaw, pitch = (50.0, 5.0) if i % 2 else (-82.5 + 15 * target[0], -82.5 + 15 * target[1])  # bin centre
        write_face(
            dst / f"d{i:02d}.jpg", np.zeros((8, 8, 3), np.uint8), dataclasses.replace(real_meta, yaw=yaw, pitch=pitch)
        )
    thin = folder_coverage(fs, dst).thin_bins("pose")
    assert [(b.index, b.deficit) for b in thin] == [(target, 2)]

    rep = _sample(hopper_gen, fs, 6, finder, describer, dst_faceset=dst, fill_poses=True, candidates=1, batch=6)
    assert rep.kept_seeds == expected and rep.kept == 2 and rep.not_needed == 4 and rep.generated == 6
    assert rep.stopped == "thin bins filled" and rep.per_bin == {f"pose {pose_label(*target)}": 2}
    for p in _synthetic(fs):
        m = read_meta(p)
        assert m.synthetic and pose_bin(m.yaw, m.pitch) == target
    # the bin is now filled by synthetic faces: a re-run finds nothing left to do
    again = _sample(hopper_gen, fs, 6, finder, describer, dst_faceset=dst, fill_poses=True, candidates=1, batch=6)
    assert (again.stopped, again.generated, again.kept) == ("no thin bins", 0, 0)


def _cand(seed: int, *bins: tuple[str, tuple[int, int]]) -> Candidate:
    return Candidate(seed, np.zeros((1, 1, 3), np.uint8), FaceMeta.__new__(FaceMeta), 0.1, np.zeros(128), list(bins))


def test_fill_plan_is_greedy_over_the_most_deficient_bins():
    side, down = ("pose", (4, 6)), ("pose", (6, 4))
    smile, closed = ("expression", (1, 2)), ("expression", (0, 0))
    plan = _FillPlan({side: 2, smile: 3, down: 0})
    assert plan.deficit == {side: 2, smile: 3}  # nothing to fill where nothing is missing
    cands = [_cand(0, ("pose", (6, 6)), closed), _cand(1, side, closed), _cand(2, side, smile), _cand(3, down, smile)]
    kept, rest = plan.pick(cands, limit=10)
    # seed 2 fills a side and a smile slot (score 2 + 3), then seed 3 (smile: 2) beats seed 1 (side: 1)
    assert [c.seed for c in kept] == [2, 3, 1] and [c.seed for c in rest] == [0]
    assert plan.deficit == {smile: 1} and not plan.done
    kept, rest = plan.pick([_cand(7, smile), _cand(5, smile)], limit=10)
    assert [c.seed for c in kept] == [5] and [c.seed for c in rest] == [7] and plan.done  # lowest seed first
    plan = _FillPlan({side: 5})
    kept, _ = plan.pick([_cand(s, side) for s in range(4)], limit=2)
    assert len(kept) == 2 and plan.deficit == {side: 3}


def test_fill_expressions_passes_over_faces_of_a_covered_expression(fs, tmp_path, hopper_gen, finder, describer):
    """dst: half its faces with the lips closed like every Hopper face, half with the jaw dropped wide open; only
    "wide" is thin, and the generator (lips always closed) has nothing to give it."""
    real_meta = load_metas(fs)[0][1]
    lm = real_meta.landmarks.copy()
    iod = np.linalg.norm(lm[42:48].mean(0) - lm[36:42].mean(0))
    lm[[6, 7, 8, 9, 10, 55, 56, 57, 58, 59, 65, 66, 67], 1] += 0.4 * iod
    lm[[48, 54, 60, 64], 1] += 0.3 * 0.4 * iod  # the mouth corners follow a dropping jaw part of the way
    dst = tmp_path / "dst"
    dst.mkdir()
    for i in range(10):
        m = dataclasses.replace(real_meta, landmarks=lm) if i % 2 else real_meta
        write_face(dst / f"d{i:02d}.jpg", np.zeros((8, 8, 3), np.uint8), m)
    thin = folder_coverage(fs, dst).thin_bins()
    assert [(b.kind, b.label) for b in thin] == [("expression", "mouth wide, smile none")]
    rep = _sample(hopper_gen, fs, 2, finder, describer, dst_faceset=dst, fill_expressions=True, candidates=2)
    assert (rep.generated, rep.not_needed, rep.kept, rep.stopped) == (4, 4, 0, "candidate budget spent")
    assert not _synthetic(fs)
    # poses are covered (dst's are src's): asking for poses only finds no thin bin and generates nothing
    rep = _sample(hopper_gen, fs, 2, finder, describer, dst_faceset=dst, fill_poses=True)
    assert (rep.stopped, rep.generated) == ("no thin bins", 0)
