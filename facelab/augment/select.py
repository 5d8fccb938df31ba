"""Keep the generator snapshot that draws the source person best.

A generator trained on one person for an hour on a CPU does not improve steadily at what ``augment sample`` needs:
the share of its samples that pass sampling's checks (a face, confirmed by a second detector, nearer than
``min_identity`` to the person) swings between checkpoints (README "Augmentation": 0.57 at 50 minutes, 0.07 at 60
of one run). So every checkpoint of ``augment train`` is probed: ``samples`` images from G_ema at sampling's
truncation go through sampling's own :class:`~facelab.augment.sample.Judge`, and the snapshot with the most passes
so far is written to ``best.safetensors`` beside the checkpoint (the export format), which ``augment sample`` and
``augment export`` use by default. The probe draws seeds from ``PROBE_SEED`` up, apart from the seeds sampling and
``benchmarks/augment_gan.py`` draw (0 up), so a snapshot is chosen on other latents than it is judged on and the
selection's luck does not leak into those figures. Every probe is kept in ``selection.json`` (the curve of the
training run itself); a resumed run reads it and only a better snapshot replaces the best.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from facelab.augment.sample import Judge
from facelab.augment.trainer import BEST_FILE, GanTrainer, generate_fn, write_generator
from facelab.config import SampleConfig
from facelab.errors import FacelabError
from facelab.io.atomic import write_atomic

log = logging.getLogger(__name__)

SELECTION_FILE = "selection.json"
PROBE_SEED = 1_000_000  # far from the seeds sampling and the benchmark draw (0 up)
PROBE_BATCH = 16  # images generated at once


@dataclass
class Probe:
    """One checkpoint's probe: of ``n`` samples, ``found`` had a face and ``passed`` passed every check."""

    iteration: int
    kimg: float
    n: int
    found: int
    passed: int
    seconds: float
    best: bool = False  # this snapshot became the best
    # median identity distance of the found faces (None: none found, or a history from before it was kept): where
    # it sits against min_identity says whether a swing in the pass rate is a drift across the threshold
    median_distance: float | None = None

    @property
    def rate(self) -> float:
        return self.passed / self.n if self.n else 0.0


class SnapshotSelector:
    """Called with the trainer after every checkpoint (``GanTrainer(on_saved=...)``): probes G_ema and keeps the
    best snapshot in ``trainer.model_dir``. ``judge`` defaults to sampling's checks on ``faceset`` (one given is
    the caller's to close)."""

    def __init__(
        self,
        faceset: str | Path,
        gan_dir: str | Path,
        samples: int,
        truncation: float = SampleConfig.truncation,
        judge: Judge | None = None,
    ) -> None:
        if samples < 1:
            raise FacelabError(f"probe samples must be >= 1 (got {samples})")
        self.gan_dir = Path(gan_dir)
        self.samples, self.truncation = samples, truncation
        try:
            self.judge = judge or Judge(faceset, SampleConfig.min_identity, confirm=SampleConfig.confirm_detector)
        except FacelabError as e:  # e.g. a GPU machine without dlib: say how to train without probes
            raise FacelabError(
                f"snapshot probes need sampling's checks: {e}; --probe-samples 0 trains without them"
            ) from e
        self._owns_judge = judge is None
        self.history = read_selection(self.gan_dir)

    @property
    def best(self) -> Probe | None:
        marked = [p for p in self.history if p.best]
        return marked[-1] if marked else None

    def __call__(self, trainer: GanTrainer) -> Probe:
        t0 = time.perf_counter()
        gen = generate_fn(trainer.G_ema)
        seeds = list(range(PROBE_SEED, PROBE_SEED + self.samples))
        verdicts, distances = [], []
        for i in range(0, len(seeds), PROBE_BATCH):
            chunk = seeds[i : i + PROBE_BATCH]
            images = gen(chunk, self.truncation)
            for s, img in zip(chunk, images):
                verdict, c = self.judge(img, s, "probe", self.truncation)
                verdicts.append(verdict)
                if c is not None:
                    distances.append(c.distance)
        passed = sum(v == "pass" for v in verdicts)
        found = sum(v != "no_face" for v in verdicts)
        median = round(float(np.median(distances)), 4) if distances else None
        probe = Probe(trainer.iteration, round(trainer.kimg, 3), len(seeds), found, passed,
                      round(time.perf_counter() - t0, 1), median_distance=median)  # fmt: skip
        best = self.best
        if passed > 0 and (best is None or passed / len(seeds) > best.rate):
            probe.best = True
            write_generator(trainer.G_ema, trainer.cfg, trainer.kimg, self.gan_dir / BEST_FILE,
                            extra={"identity_pass": f"{probe.rate:.4f}", "probe_samples": str(probe.n)})  # fmt: skip
        self.history.append(probe)
        write_atomic(self.gan_dir / SELECTION_FILE, json.dumps([asdict(p) for p in self.history], indent=1).encode())
        now = self.best
        log.info(
            "%.1f kimg: %d of %d probe samples pass sampling's checks (%d faces found, median identity distance %s, "
            "%.0f s); best %s",
            probe.kimg, passed, probe.n, found, "-" if median is None else f"{median:.3f}", probe.seconds,
            f"{now.rate:.3f} at {now.kimg:.1f} kimg" if now else "none yet",
        )  # fmt: skip
        return probe

    def close(self) -> None:
        if self._owns_judge:
            self.judge.close()


def read_selection(gan_dir: str | Path) -> list[Probe]:
    """The probes saved in ``gan_dir`` (none for a new folder); a one-line error for an unreadable file."""
    path = Path(gan_dir) / SELECTION_FILE
    if not path.exists():
        return []
    try:
        return [Probe(**p) for p in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError) as e:
        raise FacelabError(f"{path}: not a facelab probe history ({e})") from e
