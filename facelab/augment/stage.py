"""``facelab augment``: the augmentation stage's entry points - train a generator, sample it into a faceset,
export it as one file."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from facelab.augment.sample import SampleReport, sample_into_faceset
from facelab.augment.select import SELECTION_FILE, Probe, SnapshotSelector
from facelab.augment.trainer import BEST_FILE, GanTrainer, export_generator, generate_fn, load_generator
from facelab.config import GanConfig, SampleConfig
from facelab.io.atomic import leaves_no_empty_dirs
from facelab.io.paths import refuse_overlap
from facelab.runs.loop import RunOutcome
from facelab.runs.progress import RunProgress, Scalars, run_progress


@dataclass
class GanTrainResult(RunOutcome):
    """``folder`` is the generator folder."""

    kimg: float  # thousand real images D has seen in total, where the run stopped
    best: Probe | None = None  # the best probed snapshot so far (None: probes off, or no sample passed yet)

    def summary(self) -> str:
        line = self.stopped_line(f"{self.kimg:.1f} kimg", "checkpoint, preview.png, previews/ and losses.png")
        if self.best is None:
            return line
        b = self.best
        return (
            f"{line}\nbest snapshot: {b.kimg:.1f} kimg, {b.passed} of {b.n} probe samples passed sampling's checks "
            f"({BEST_FILE}; 'augment sample' uses it; probes in {SELECTION_FILE})"
        )


@dataclass
class GanExportResult:
    output: str
    bytes_written: int

    def summary(self) -> str:
        return (
            f"wrote {self.output} ({self.bytes_written / 2**20:.1f} MiB); "
            f"sample from it with 'facelab augment sample --gan {self.output}'"
        )


@leaves_no_empty_dirs("gan_dir")  # a run that fails to start leaves no empty generator folder
def train_generator(
    faceset: str | Path,
    gan_dir: str | Path,
    cfg: GanConfig,
    given: set[str],
    kimg: float | None = None,
    minutes: float | None = None,
    init_from: str | Path | None = None,
    progress: RunProgress | None = None,
    log: Callable[[str], None] | None = None,
) -> GanTrainResult:
    """Train (or resume) the generator in ``gan_dir`` on the real faces of ``faceset`` until D has seen ``kimg``
    thousand images in total or for ``minutes`` (probes included). ``log`` gets one line saying what is trained
    before the run starts; ``progress(done, total, losses)`` follows the run. With ``cfg.probe_samples``, every
    checkpoint is probed and the best snapshot kept (``facelab.augment.select``)."""
    trainer = GanTrainer(faceset, gan_dir, cfg, given, init_from=init_from)
    n = trainer.cfg.probe_samples if trainer.dist.main else 0
    # sampling's checks on the faceset, set up before the clock starts
    selector = SnapshotSelector(faceset, gan_dir, n, truncation=SampleConfig.truncation) if n > 0 else None
    trainer.on_saved = selector
    if log is not None:
        log(_start_line(trainer, n))
    iters = math.ceil(kimg * 1000 / trainer.cfg.batch) if kimg is not None else None
    try:
        res = trainer.run(iters, minutes, progress=run_progress(progress, trainer.iteration, iters, _losses))
    finally:
        if selector is not None:
            selector.close()
    best = selector.best if selector is not None else None
    return GanTrainResult(str(gan_dir), res.stopped, res.seconds, trainer.kimg, best)


def sample_faces(
    gan: str | Path, faceset: str | Path, n: int, cfg: SampleConfig, dst: str | Path | None = None
) -> SampleReport:
    """Generate faces with the generator ``gan`` (folder or exported file; ``cfg.snapshot`` of a folder) and add up
    to ``n`` of them that are still the faceset's person to ``faceset`` (``dst``: the faceset whose thin bins
    ``cfg.fill_*`` fill)."""
    refuse_overlap({"generator": gan, "dst faceset": dst}, {"--faceset": faceset})
    g, _, gen_id = load_generator(gan, snapshot=cfg.snapshot)
    return sample_into_faceset(
        generate_fn(g),
        faceset,
        n,
        generator_id=gen_id,
        truncation=cfg.truncation,
        min_identity=cfg.min_identity,
        dst_faceset=dst,
        fill_poses=cfg.fill_poses,
        fill_expressions=cfg.fill_expressions,
        candidates=cfg.candidates,
        first_seed=cfg.seed,
        confirm=None if cfg.confirm_detector == "none" else cfg.confirm_detector,
    )


def export_sampler(
    gan_dir: str | Path, output: str | Path, half: bool = False, snapshot: str = "best"
) -> GanExportResult:
    """The sampling generator of ``gan_dir`` (its best or latest snapshot) alone, in one safetensors file
    (``half``: fp16 weights)."""
    refuse_overlap({"generator folder": gan_dir}, {"--out": output})
    return GanExportResult(str(output), export_generator(gan_dir, output, half=half, snapshot=snapshot))


def _start_line(t: GanTrainer, probe_samples: int) -> str:
    g, d = (sum(p.numel() for p in net.parameters()) for net in (t.G, t.D))
    probes = (
        f"every checkpoint probed with {probe_samples} samples at psi {SampleConfig.truncation:g}, best kept"
        if probe_samples
        else "no probes (latest snapshot only)"
    )
    return (
        f"StyleGAN2-ADA {t.settings()}\n"
        f"G {g:,} / D {d:,} parameters; {len(t.reals)} real faces; starting at {t.kimg:.1f} kimg; {probes}"
    )


def _losses(s: Scalars) -> str:
    return f"G {s['G']:.3f} D {s['D']:.3f} p {s.get('ada_p', 0):.3f}"
