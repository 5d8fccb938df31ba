"""Sample a generator into a faceset: generate, re-extract, keep what is still the source person, flag it synthetic.

Every generated image goes through the extraction stage (FaceFinder, then ``align_face`` to the faceset's own face
type and size), so a kept face has real landmarks, pose and blur like any extracted face. Images with no face are
dropped (``no_face``), and so are faces whose dlib descriptor is ``min_identity`` or further from the mean
descriptor of the faceset's real faces (``wrong_identity``): a generator trained on few faces drifts to other
people. A face that passes must also be found by a second, independent detector (``not_confirmed``; dlib's CNN by
default): an undertrained generator draws face-coloured shapes that one detector, the landmark model and even the
identity descriptor accept, and a second opinion from a differently built detector rejects them. With
``fill_poses`` / ``fill_expressions`` only candidates that land in the thin bins of ``facelab.faceset.coverage``
(where the dst has faces and the src has few) are kept, most deficient bins first.

Faces are written as ``synthetic_<generator_id>_<seed:06d>.jpg`` with ``FaceMeta.synthetic`` set and the generator,
seed, truncation and identity distance in ``extra``. A seed whose file exists is not generated again and counts
towards ``n``, so re-running the same command resumes and never duplicates; to add more, raise ``n`` or start at
another ``first_seed``.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from facelab.augment.reextract import mean_descriptor, reextract, search_image
from facelab.config import SampleConfig
from facelab.errors import FacelabError
from facelab.faces.detect import Box, Detector, make_detector
from facelab.faces.finder import FaceFinder
from facelab.faces.identity import FaceDescriber
from facelab.faceset.coverage import (
    MIN_DST,
    THIN_FRACTION,
    expression_bin,
    expression_features,
    expression_label,
    folder_coverage,
    pose_bin,
    pose_label,
)
from facelab.faceset.index import load_metas
from facelab.faceset.meta import FaceMeta
from facelab.faceset.store import write_face
from facelab.geometry.facetype import FaceType
from facelab.geometry.umeyama import apply_affine

Generate = Callable[[Sequence[int], float], np.ndarray]  # (seeds, truncation_psi) -> uint8 RGB (B, R, R, 3)
_ID_RE = re.compile(r"^[A-Za-z0-9._-]+$")
BinKey = tuple[str, tuple[int, int]]  # ("pose" | "expression", bin index)


@dataclass
class SampleReport:
    """What one ``sample_into_faceset`` run did. ``generated`` counts images examined in this run; every one of
    them ends up in exactly one of ``no_face``, ``wrong_identity``, ``not_confirmed``, ``not_needed`` or
    ``kept``."""

    faceset: str
    generator_id: str
    requested: int
    existing: int = 0  # seeds whose file was already in the faceset (a previous run): counted towards n
    generated: int = 0
    no_face: int = 0
    wrong_identity: int = 0
    not_confirmed: int = 0  # the second detector found no face where the first did
    not_needed: int = 0  # fill mode: a passing face that landed in no bin still lacking faces
    kept: int = 0
    per_bin: dict[str, int] = field(default_factory=dict)  # pose and expression bin label -> faces kept there
    files: list[str] = field(default_factory=list)
    identity_distances: list[float] = field(default_factory=list)  # every face found, in seed order
    kept_seeds: list[int] = field(default_factory=list)
    next_seed: int = 0  # the first seed this run did not look at
    confirmed_by: str = ""  # the second detector's name ("" = none)
    stopped: str = ""  # "n reached" | "candidate budget spent" | "thin bins filled" | "no thin bins"
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Generated images examined per second."""
        return self.generated / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "rate": round(self.rate, 3)}

    def summary(self) -> str:
        d = np.asarray(self.identity_distances)
        dist = f"; identity distance median {np.median(d):.3f} (min {d.min():.3f}, max {d.max():.3f})" if d.size else ""
        lines = [
            f"{self.kept} synthetic faces added to {self.faceset} ({self.existing} already there); "
            f"{self.generated} generated ({self.rate:.1f}/s): {self.no_face} without a face, "
            f"{self.wrong_identity} not the source person, "
            + (f"{self.not_confirmed} not a face to {self.confirmed_by}, " if self.confirmed_by else "")
            + f"{self.not_needed} not needed{dist}; "
            f"stopped: {self.stopped}; next seed {self.next_seed}",
        ]
        lines += [f"  {label}: {n}" for label, n in sorted(self.per_bin.items(), key=lambda kv: (-kv[1], kv[0]))]
        return "\n".join(lines)


@dataclass
class Candidate:
    """A generated image's extracted face, before it is judged."""

    seed: int
    face: np.ndarray  # aligned RGB crop
    meta: FaceMeta
    distance: float  # dlib descriptor distance to the faceset's identity
    descriptor: np.ndarray  # (128,) dlib descriptor that distance was measured with
    bins: list[BinKey]


class _FillPlan:
    """Remaining deficits of the thin bins; a candidate's score is the sum of the deficits of the bins it fills."""

    def __init__(self, deficits: dict[BinKey, int]) -> None:
        self.deficit = {k: v for k, v in deficits.items() if v > 0}

    @classmethod
    def from_coverage(
        cls, src: str | Path, dst: str | Path, kinds: Sequence[str], min_dst: int, fraction: float
    ) -> _FillPlan:
        cov = folder_coverage(src, dst)
        deficits = {}
        for b in cov.thin_bins(min_dst=min_dst, fraction=fraction):  # thin judged on real faces ...
            if b.kind in kinds:
                # ... and filled up to dst's share, counting synthetic faces a previous run already added
                deficits[(b.kind, b.index)] = b.deficit - b.synthetic
        return cls(deficits)

    def score(self, bins: Sequence[BinKey]) -> int:
        return sum(self.deficit.get(k, 0) for k in bins)

    def take(self, bins: Sequence[BinKey]) -> None:
        for k in bins:
            if k in self.deficit:
                self.deficit[k] -= 1
                if self.deficit[k] <= 0:
                    del self.deficit[k]

    @property
    def done(self) -> bool:
        return not self.deficit

    def pick(self, cands: list[Candidate], limit: int) -> tuple[list[Candidate], list[Candidate]]:
        """Greedy: keep the highest-scoring candidate, lower the deficits it fills, repeat; (kept, not needed)."""
        left, kept = list(cands), []
        while left and len(kept) < limit:
            best = max(range(len(left)), key=lambda i: (self.score(left[i].bins), -left[i].seed))
            if self.score(left[best].bins) <= 0:
                break
            c = left.pop(best)
            self.take(c.bins)
            kept.append(c)
        return kept, left


def sample_into_faceset(
    generate: Generate,
    faceset: str | Path,
    n: int,
    *,
    generator_id: str,
    truncation: float = SampleConfig.truncation,
    min_identity: float = SampleConfig.min_identity,
    dst_faceset: str | Path | None = None,
    fill_poses: bool = False,
    fill_expressions: bool = False,
    candidates: int = SampleConfig.candidates,
    first_seed: int = SampleConfig.seed,
    batch: int = 8,
    progress: bool = True,
    finder: FaceFinder | None = None,
    describer: FaceDescriber | None = None,
    confirm: str | Detector | None = SampleConfig.confirm_detector,
    min_dst: int = MIN_DST,
    fraction: float = THIN_FRACTION,
) -> SampleReport:
    """Add up to ``n`` generated faces of the faceset's person to ``faceset`` (see the module docstring).

    Seeds ``first_seed, first_seed + 1, ...`` are drawn in batches of ``batch``; at most ``n * candidates`` images
    are examined. Without fill flags the first ``n`` faces that pass are kept; with ``fill_poses`` /
    ``fill_expressions`` (which need ``dst_faceset``) each batch's passing faces are kept greedily for the thin
    bins (``min_dst``, ``fraction`` as in ``Coverage.thin_bins``) until ``n`` are kept or no bin lacks faces.
    ``finder`` / ``describer`` default to the extraction stage's FaceFinder and FaceDescriber; ``confirm`` is the
    second detector (a name, an instance, or None to trust the first alone).
    """
    folder = Path(faceset)
    kinds = tuple(k for k, on in (("pose", fill_poses), ("expression", fill_expressions)) if on)
    if kinds and dst_faceset is None:
        raise FacelabError("filling thin pose/expression bins needs the dst faceset to compare with (--dst)")
    if not _ID_RE.match(generator_id):
        raise FacelabError(f"generator id {generator_id!r} must be letters, digits, '.', '_' or '-' (a file name part)")
    if n < 0 or candidates < 1 or batch < 1:
        raise FacelabError(f"n must be >= 0 and candidates, batch >= 1 (got {n}, {candidates}, {batch})")
    report = SampleReport(str(folder), generator_id, n, next_seed=first_seed)
    t0 = time.perf_counter()
    judge = Judge(folder, min_identity, finder=finder, describer=describer, confirm=confirm)
    plan = _FillPlan.from_coverage(folder, dst_faceset, kinds, min_dst, fraction) if kinds else None
    if plan is not None and plan.done:
        judge.close()
        report.stopped = "no thin bins"
        return report
    report.confirmed_by = judge.confirmed_by
    budget = n * candidates
    bar = _bar(n, progress)  # counts faces in the faceset towards n; the postfix tells where the rest went
    shown = 0
    seed = first_seed
    try:
        while report.existing + report.kept < n and report.generated < budget:
            if plan is not None and plan.done:
                report.stopped = "thin bins filled"
                break
            seeds: list[int] = []
            want = min(batch, budget - report.generated)
            while len(seeds) < want and report.existing + report.kept + (0 if plan else len(seeds)) < n:
                if _face_path(folder, generator_id, seed).exists():
                    report.existing += 1
                else:
                    seeds.append(seed)
                seed += 1
            report.next_seed = seed
            if not seeds:
                break
            images = _generated(generate, seeds, truncation)
            cands = []
            for s, img in zip(seeds, images):
                report.generated += 1
                verdict, c = judge(img, s, generator_id, truncation)
                if c is not None:
                    report.identity_distances.append(round(c.distance, 4))
                if verdict == "pass":
                    cands.append(c)
                else:
                    setattr(report, verdict, getattr(report, verdict) + 1)
            need = n - report.existing - report.kept
            if plan is None:
                keep = cands[:need]  # never more: without a plan a batch holds at most the faces still needed
            else:
                for c in cands:
                    c.bins = [k for k in c.bins if k[0] in kinds]
                keep, rest = plan.pick(cands, need)
                report.not_needed += len(rest)
            for c in sorted(keep, key=lambda c: c.seed):
                _write(folder, generator_id, c, report)
            bar.set_postfix_str(
                f"generated {report.generated}: no face {report.no_face}, other person {report.wrong_identity}, "
                f"unconfirmed {report.not_confirmed}"
                + (f", not needed {report.not_needed}" if plan is not None else "")
            )
            bar.update(report.existing + report.kept - shown)
            shown = report.existing + report.kept
    finally:
        bar.close()
        judge.close()
    if not report.stopped:
        if report.existing + report.kept >= n:
            report.stopped = "n reached"
        elif plan is not None and plan.done:
            report.stopped = "thin bins filled"
        else:
            report.stopped = "candidate budget spent"
    report.seconds = time.perf_counter() - t0
    return report


Verdict = Literal["pass", "no_face", "wrong_identity", "not_confirmed"]


class Judge:
    """The checks a generated image must pass to join ``faceset`` (the module docstring's), set up once: the
    extraction stage's FaceFinder, dlib's descriptor and the mean descriptor of the faceset's real faces, the second
    detector. ``confirm`` is a detector name (opened here, closed by :meth:`close`), an instance, or None."""

    def __init__(
        self,
        faceset: str | Path,
        min_identity: float = SampleConfig.min_identity,
        *,
        finder: FaceFinder | None = None,
        describer: FaceDescriber | None = None,
        confirm: str | Detector | None = SampleConfig.confirm_detector,
    ) -> None:
        folder = Path(faceset)
        if min_identity <= 0:
            raise FacelabError(f"min_identity must be > 0 (got {min_identity})")
        real = [(p, m) for p, m in load_metas(folder) if not m.synthetic]  # FacesetError naming a missing folder
        if not real:
            raise FacelabError(f"{folder}: no real faces to take the person's identity from")
        self.face_type = FaceType.parse(Counter(m.face_type for _, m in real).most_common(1)[0][0])
        self.size = Counter(m.size for _, m in real).most_common(1)[0][0]
        self.min_identity = min_identity
        self.finder = finder or FaceFinder()
        self.describer = describer or FaceDescriber()
        try:
            self.confirmer = make_detector(confirm) if isinstance(confirm, str) else confirm
        except ValueError as e:
            raise FacelabError(f"second detector: {e}") from e
        self._owns_confirmer = isinstance(confirm, str)
        self.reference = mean_descriptor(real, self.describer)

    @property
    def confirmed_by(self) -> str:
        """The second detector's name ("" = none)."""
        return self.confirmer.name if self.confirmer is not None else ""

    def __call__(self, image: np.ndarray, seed: int, generator_id: str, psi: float) -> tuple[Verdict, Candidate | None]:
        """The verdict on one generated RGB image, and its extracted face (None when there is none)."""
        c = self.examine(image, seed, generator_id, psi)
        if c is None:
            return "no_face", None
        if c.distance >= self.min_identity:
            return "wrong_identity", c
        if not self.confirms(image, c):
            return "not_confirmed", c
        return "pass", c

    def examine(self, image: np.ndarray, seed: int, generator_id: str, psi: float) -> Candidate | None:
        """The face the first detector finds in ``image``, extracted and described; None when there is none."""
        # the seed names the generated image as a frame number names a video frame
        extra = {"generator": generator_id, "seed": int(seed), "truncation": float(psi)}
        r = reextract(
            image, self.finder, self.describer, self.reference, self.face_type, self.size,
            source_file=f"generator:{generator_id}", frame_index=seed, extra=extra,
        )  # fmt: skip
        if r is None:
            return None
        bins: list[BinKey] = [("pose", pose_bin(r.meta.yaw, r.meta.pitch))]
        eb = expression_bin(*expression_features(r.meta.landmarks))
        if eb is not None:
            bins.append(("expression", eb))
        return Candidate(seed, r.face, r.meta, r.distance, r.descriptor, bins)

    def confirms(self, image: np.ndarray, c: Candidate) -> bool:
        """Whether the second detector also finds ``c``'s face (always, without one)."""
        return self.confirmer is None or _confirmed(image, c, self.confirmer)

    def close(self) -> None:
        if self._owns_confirmer and self.confirmer is not None:
            self.confirmer.close()


def _confirmed(image: np.ndarray, c: Candidate, detector: Detector, min_iou: float = 0.3) -> bool:
    """Whether ``detector`` also finds a face where the first detector found this candidate's (box IoU >= min_iou,
    both in the generated image's pixels); its score goes into the face's metadata."""
    search, back = search_image(image)
    first = Box(*c.meta.source_rect)
    for b in detector.detect(search):
        box = Box(*apply_affine(back, np.array(b.as_list()).reshape(2, 2)).ravel())
        if box.iou(first) >= min_iou:
            c.meta.extra.update(confirmed_by=detector.name, confirm_score=round(float(b.score), 4))
            return True
    return False


def _write(folder: Path, generator_id: str, c: Candidate, report: SampleReport) -> None:
    path = _face_path(folder, generator_id, c.seed)
    write_face(path, c.face, c.meta)  # atomic: a reader never sees half a face
    report.kept += 1
    report.files.append(str(path))
    report.kept_seeds.append(c.seed)
    for kind, idx in c.bins:
        label = f"{kind} " + (pose_label(*idx) if kind == "pose" else expression_label(*idx))
        report.per_bin[label] = report.per_bin.get(label, 0) + 1


def _face_path(folder: Path, generator_id: str, seed: int) -> Path:
    return folder / f"synthetic_{generator_id}_{seed:06d}.jpg"


def _generated(generate: Generate, seeds: list[int], psi: float) -> np.ndarray:
    images = np.asarray(generate(seeds, psi))
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[0] != len(seeds) or images.shape[3] != 3:
        raise FacelabError(
            f"generator returned {images.dtype} {images.shape} for {len(seeds)} seeds (expected uint8 (B, R, R, 3))"
        )
    return images


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total: int, progress: bool) -> Any:
    if not progress:
        return _NoBar()
    from tqdm import tqdm

    # with the rate (faces/s) and ETA; like every facelab bar, silent in logs unless FACELAB_PROGRESS=1
    disable = not (sys.stderr.isatty() or os.environ.get("FACELAB_PROGRESS") == "1")
    return tqdm(total=total, desc="sample", unit="face", dynamic_ncols=True, disable=disable)
