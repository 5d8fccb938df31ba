"""``facelab train``: the training stage's entry points - train (or resume) a swap model, or describe one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from facelab.config import ModelConfig, TrainConfig
from facelab.io.atomic import leaves_no_empty_dirs
from facelab.models.precision import precision_label
from facelab.models.saehd import SAEHD, validate
from facelab.runs.loop import RunOutcome
from facelab.runs.progress import RunProgress, Scalars, run_progress
from facelab.train.loop import Trainer
from facelab.train.samples import Folders


@dataclass
class ModelDescription:
    """What ``facelab train --dry-run`` shows: the model's options and parameter counts per network."""

    cfg: ModelConfig
    param_counts: dict[str, int]

    def summary(self) -> str:
        c = self.cfg
        head = (
            f"{c.archi} @ {c.resolution} (ae {c.ae_dims}, e {c.e_dims}, d {c.d_dims}, "
            f"d_mask {c.d_mask_dims}, {c.face_type})"
        )
        return "\n".join([head, *(f"  {k:12} {v:>13,}" for k, v in self.param_counts.items())])


@dataclass
class TrainResult(RunOutcome):
    """``folder`` is the model folder."""

    iteration: int  # where the run stopped (total, counted from the model's first)

    def summary(self) -> str:
        return self.stopped_line(f"iteration {self.iteration}", "checkpoint, preview.png and losses.png")


def describe_model(mcfg: ModelConfig) -> ModelDescription:
    """Build the model of ``mcfg`` (no data, no training) and count its parameters."""
    validate(mcfg)
    return ModelDescription(mcfg, SAEHD(mcfg).param_counts())


@leaves_no_empty_dirs("model_dir")  # a run that fails to start (no faces, bad options) leaves no empty folder
def train_model(
    src: Folders,
    dst: str | Path | None,
    model_dir: str | Path,
    mcfg: ModelConfig,
    tcfg: TrainConfig,
    given: set[str],
    iters: int | None = None,
    minutes: float | None = None,
    progress: RunProgress | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train a new model in ``model_dir`` (or resume the one there, see ``resolve_configs`` for ``given``) until
    ``iters`` iterations in total or for ``minutes``. ``src`` is one faceset folder or several, pooled (the real
    faces and rendered ones); ``dst`` None pretrains on them alone. ``log`` gets one line saying what is trained before the run starts;
    ``progress(done, total, losses)`` follows the run."""
    trainer = Trainer(src, dst, model_dir, mcfg, tcfg, given)
    if log is not None:
        log(_start_line(trainer))
    res = trainer.run(iters, minutes, progress=run_progress(progress, trainer.iteration, iters, _losses))
    return TrainResult(str(model_dir), res.stopped, res.seconds, res.iteration)


def _start_line(t: Trainer) -> str:
    return (
        f"{t.mcfg.archi} @ {t.mcfg.resolution}: {t.model.param_counts()['total']:,} parameters; "
        f"{len(t.src_bank)} src{_synth(t.src_bank.synthetic)} / {len(t.dst_bank)} dst"
        f"{_synth(t.dst_bank.synthetic)} faces; {precision_label(t.tcfg.precision, t.amp)}; starting at iteration "
        f"{t.iteration}"
    )


def _losses(s: Scalars) -> str:
    return f"{s['ms_per_iter']:.0f} ms src {s['src']:.4f} dst {s['dst']:.4f}"


def _synth(n: int) -> str:
    return f" ({n} synthetic)" if n else ""
