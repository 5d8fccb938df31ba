"""Run machinery shared by every trainer (the swap model's and the StyleGAN2 generator's).

A subclass says what one iteration is (``step``), where batches come from (``loader``), which modules and
optimizers make up its state, and what it previews; ``RunLoop`` does the rest: limits, seeding, NaN and OOM
handling, autosave, atomic checkpoints, Ctrl+C, TensorBoard scalars, and rank-0-only output under torchrun.

Exactness: iteration ``i`` reseeds torch with ``hash_seed(seed, i)`` and its batch is a pure function of
``(seed, i)``, so a run resumed from a checkpoint continues bit-for-bit like an uninterrupted one (fp32, CPU,
same thread count).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from facelab.errors import FacelabError
from facelab.io import checkpoint
from facelab.io.atomic import write_atomic
from facelab.runs.guard import NonFiniteLossError
from facelab.runs.plan import Plan, plan_for_run
from facelab.runs.preview import loss_curve_png

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    iteration: int
    seconds: float
    history: dict[str, list[float]]
    stopped: str  # "iterations" | "minutes" | "interrupted"


@dataclass
class RunOutcome:
    """How a stage's training run ended: the folder it checkpointed to, why it stopped, how long it ran."""

    folder: str
    stopped: str  # "iterations" | "minutes" | "interrupted"
    seconds: float

    def stopped_line(self, at: str, files: str) -> str:
        return f"stopped at {at} ({self.stopped}) after {self.seconds / 60:.1f} min; {files} in {self.folder}"


@dataclass
class Schedule:
    """The run options every trainer has."""

    seed: int
    preview_every: int  # iterations; 0 = only at the end
    autosave_minutes: float
    backup_every: int = 0  # iterations; 0 = off
    backups_kept: int = 5
    autosave_iters: int = 0  # also save every N iterations; 0 = off

    @classmethod
    def of(cls, cfg: Any) -> Schedule:
        """The schedule of a trainer config that has these fields (backup_* where it has them)."""
        names = [f for f in ("backup_every", "backups_kept", "autosave_iters") if hasattr(cfg, f)]
        return cls(cfg.seed, cfg.preview_every, cfg.autosave_minutes, **{f: getattr(cfg, f) for f in names})

    def autosave_due(self, iteration: int, seconds_since_save: float) -> bool:
        by_iters = self.autosave_iters > 0 and iteration % self.autosave_iters == 0
        return by_iters or seconds_since_save >= self.autosave_minutes * 60


class Dist:
    """torchrun environment: rank, world size, device."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            self.device = torch.device("cuda", self.local)
            torch.cuda.set_device(self.device)
            # every iteration has the same shapes: let cuDNN time its algorithms once rather than pick by heuristic
            # (which can be slow for unusual shapes like the single-channel FIR convs); StyleGAN2-ADA does the same
            torch.backends.cudnn.benchmark = True
        else:
            self.device = torch.device("cpu")
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0


class RunLoop:
    """Base of a trainer. Subclasses set ``model_dir``, ``dist``, ``iteration``, ``history`` and implement the
    hooks below."""

    model_dir: Path
    dist: Dist
    iteration: int
    history: dict[str, list[float]]
    curve_keys: tuple[str, ...] = ()  # history keys drawn in losses.png
    # iterations whose scalars are read back together: ``step`` may return 0-dim tensors, which are resolved (one
    # device sync for all of them) every ``log_every`` iterations and before previews, saves and the end; 1 = every
    # iteration, as floats were. A resolved loss of ``curve_keys`` that is not finite counts as a skipped step.
    log_every: int = 1
    _tb: Any = None
    _run_start = 0  # the iteration this process's run started from (its checkpoint's)
    _plan: Plan | None = None  # the current run's plan (see facelab.runs.plan)
    _saved_plan: dict[str, Any] | None = None  # the plan of the checkpoint resumed from
    _plan_t0 = 0.0  # monotonic time this run's plan clock started

    # --- hooks -------------------------------------------------------------------------------------------------

    @property
    def schedule(self) -> Schedule:
        raise NotImplementedError

    def step(self, batch: Any) -> dict[str, float | torch.Tensor]:
        """One iteration; returns scalars to log (floats, or 0-dim tensors read back later: see ``log_every``).
        Raises ``NonFiniteLossError`` without updating."""
        raise NotImplementedError

    def loader(self) -> Iterable[Any]:
        """Batches from iteration ``self.iteration`` on (a pure function of seed and iteration)."""
        raise NotImplementedError

    def modules(self) -> dict[str, torch.nn.Module]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def extra_state(self) -> dict[str, Any]:
        """JSON-able state saved with the checkpoint besides weights and optimizers (configs, controllers)."""
        return {}

    def write_config(self) -> None:
        """Write the human-readable config.json next to the checkpoint."""

    def preview(self) -> None:
        """Write preview images (rank 0 only)."""

    def oom_hint(self) -> str:
        return "lower the batch size"

    def extra_scalars(self) -> dict[str, float]:
        """Scalars for TensorBoard only (learning rates, augmentation strength)."""
        return {}

    def planned_end(self, iterations: int | None) -> int | None:
        """The iteration the run's plan ends at: the run's own limit unless the trainer plans further (a
        benchmark that scores snapshots of one longer plan)."""
        return iterations

    def on_progress(self, progress: float) -> None:
        """Called before every iteration (and once before the first batch is drawn) with the plan's progress."""

    def pack_checkpoint(self, ck: checkpoint.Checkpoint) -> checkpoint.Checkpoint:
        """The checkpoint as written (a trainer may store it smaller); must not change the live tensors."""
        return ck

    def unpack_checkpoint(self, ck: checkpoint.Checkpoint) -> checkpoint.Checkpoint:
        """The inverse of ``pack_checkpoint``: a loaded checkpoint as the modules and optimizers take it."""
        return ck

    # --- restore -----------------------------------------------------------------------------------------------

    def load_checkpoint(self) -> checkpoint.Checkpoint | None:
        """Load weights, optimizers, iteration and history from ``model_dir``; returns the checkpoint (for the
        subclass's own state) or None when there is none."""
        ck = checkpoint.load(self.model_dir)
        if ck is None:
            return None
        ck = self.unpack_checkpoint(ck)
        self._load_modules(ck)
        self.iteration = int(ck.state["iteration"])
        self.history = ck.state.get("history", {})
        self._saved_plan = ck.state.get("plan")
        for name, opt in self.optimizers().items():
            if name in ck.optimizers:
                opt.load_state_dict(ck.optimizers[name])
        return ck

    def _load_modules(self, ck: checkpoint.Checkpoint) -> None:
        for name, mod in self.modules().items():
            sd = checkpoint.submodule(ck.model, name)
            try:
                mod.load_state_dict(sd)
            except RuntimeError as e:
                raise FacelabError(
                    f"{self.model_dir}: checkpoint does not fit this model ({str(e).splitlines()[0]})"
                ) from e

    # --- the run -----------------------------------------------------------------------------------------------

    def run(
        self,
        iterations: int | None = None,
        minutes: float | None = None,
        progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> RunResult:
        """Train until ``iterations`` (total, counted from the model's first) or ``minutes`` (this run); saves on
        the way (autosave), on Ctrl+C and at the end."""
        if iterations is None and minutes is None:
            raise FacelabError("give a limit: iterations or minutes")
        sch = self.schedule
        t0 = last_save = time.monotonic()
        stopped = "iterations"
        it_start = self._run_start = self.iteration
        if iterations is not None and self.iteration >= iterations:
            return RunResult(self.iteration, 0.0, self.history, "iterations")
        self._plan, minutes = plan_for_run(self.iteration, self.planned_end(iterations), minutes, self._saved_plan)
        self._plan_t0 = t0
        self.on_progress(self._plan.progress(self.iteration, 0.0))
        data = iter(self.loader())
        self._pending, self._tick, self._bad_steps = [], time.perf_counter(), 0
        stop = StopRequest()
        try:
            stop.__enter__()
            while True:
                if stop.requested:
                    raise KeyboardInterrupt
                if iterations is not None and self.iteration >= iterations:
                    break
                if minutes is not None and time.monotonic() - t0 >= minutes * 60:
                    stopped = "minutes"
                    break
                self.on_progress(self._plan.progress(self.iteration, time.monotonic() - t0))
                try:
                    batch = next(data)
                except Exception:
                    if stop.requested:  # the loader's processes got the Ctrl+C too
                        raise KeyboardInterrupt from None
                    raise
                torch.manual_seed(hash_seed(sch.seed, self.iteration))
                try:
                    scal = self.step(batch)
                except NonFiniteLossError as e:
                    self._flush_scalars(progress)  # the steps before this one come first
                    log.warning("iteration %d: %s; step skipped", self.iteration, e)
                    self._count_bad_step(True)
                    self.iteration += 1
                    continue
                except torch.OutOfMemoryError as e:
                    raise FacelabError(f"out of memory; {self.oom_hint()}") from e
                self.iteration += 1
                self._pending.append((self.iteration, scal))
                preview_due = self.dist.main and sch.preview_every and self.iteration % sch.preview_every == 0
                save_due = sch.autosave_due(self.iteration, time.monotonic() - last_save)
                if len(self._pending) >= max(self.log_every, 1) or preview_due or save_due:
                    self._flush_scalars(progress)
                if preview_due:
                    self.write_previews()
                if save_due:
                    self.save()
                    last_save = time.monotonic()
        except KeyboardInterrupt:
            stopped = "interrupted"
        finally:
            stop.__exit__()
            self._flush_scalars(progress)
            shutdown = getattr(data, "_shutdown_workers", None)  # stop loader processes now, not at a later GC
            if shutdown is not None:
                shutdown()
            del data
            if self.iteration > it_start or not (self.model_dir / checkpoint.CKPT).exists():
                self.save()
            if self.dist.main:
                try:
                    self.write_previews()
                except Exception as e:  # noqa: BLE001 - the model is saved; a preview must not turn that into an error
                    log.warning("%s: previews not written (%s: %s)", self.model_dir, type(e).__name__, e)
            if self._tb is not None:
                self._tb.flush()
            self._saved_plan, self._plan = self._plan.state(time.monotonic() - t0), None
        return RunResult(self.iteration, time.monotonic() - t0, self.history, stopped)

    def _flush_scalars(self, progress: Callable[[dict[str, Any]], None] | None) -> None:
        """Read back the pending iterations' scalars (one sync), log them and report progress; the time since the
        last flush is shared evenly as their ``ms_per_iter`` (with asynchronous steps, only the sum is real)."""
        pending: list[tuple[int, dict[str, Any]]] = getattr(self, "_pending", [])
        if not pending:
            return
        self._pending = []
        now = time.perf_counter()
        ms = (now - self._tick) * 1000 / len(pending)
        self._tick = now
        for iteration, scal in zip([it for it, _ in pending], _resolve_scalars([s for _, s in pending])):
            scal = self._all_ranks_mean(scal)
            bad = [k for k in self.curve_keys if k in scal and not math.isfinite(scal[k])]
            if bad:
                log.warning("iteration %d: loss %r is not finite (%s); its update was zeroed", iteration - 1,
                            bad[0], scal[bad[0]])  # fmt: skip
            self._count_bad_step(bool(bad))
            scal["ms_per_iter"] = ms
            self._log(scal, iteration)
            if progress is not None and self.dist.main:
                progress({"iteration": iteration, **scal})

    def _count_bad_step(self, bad: bool) -> None:
        """Three non-finite steps in a row: roll back to the last checkpoint."""
        self._bad_steps = getattr(self, "_bad_steps", 0) + 1 if bad else 0
        if self._bad_steps >= 3:
            self._recover()
            self._bad_steps = 0

    def _all_ranks_mean(self, scal: dict[str, float]) -> dict[str, float]:
        """Logged losses are the global batch's, not rank 0's share (comparable to a one-process run)."""
        if self.dist.world == 1:
            return scal
        keys = sorted(scal)
        t = torch.tensor([scal[k] for k in keys], dtype=torch.float64, device=self.dist.device)
        dist.all_reduce(t)
        return dict(zip(keys, (t / self.dist.world).tolist()))

    def _recover(self) -> None:
        """Three non-finite steps in a row: the weights have collapsed; go back to the last checkpoint."""
        ck = checkpoint.load(self.model_dir)
        if ck is None:
            raise FacelabError("training diverged (non-finite losses) before the first checkpoint; lower the lr")
        ck = self.unpack_checkpoint(ck)
        log.warning("training diverged: restored the checkpoint of iteration %s", ck.state["iteration"])
        self._load_modules(ck)
        for name, opt in self.optimizers().items():
            opt.load_state_dict(ck.optimizers[name])

    def _log(self, scal: dict[str, float], iteration: int | None = None) -> None:
        """Append ``scal`` to the history and TensorBoard at ``iteration`` (default: the current one)."""
        if not self.dist.main:
            return
        step = self.iteration if iteration is None else iteration
        for k, v in scal.items():
            self.history.setdefault(k, []).append(round(float(v), 6))
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter

            # a killed run's curves may run past the checkpoint this run resumed from: TensorBoard hides the
            # events of earlier files from this step on, so no step is shown twice
            self._tb = SummaryWriter(str(self.model_dir / "tensorboard"), purge_step=self._run_start + 1)
        for k, v in scal.items():
            self._tb.add_scalar(f"loss/{k}" if k != "ms_per_iter" else "speed/ms_per_iter", v, step)
        self._tb.add_scalar("speed/it_per_s", 1000.0 / max(scal["ms_per_iter"], 1e-6), step)
        for k, v in self.extra_scalars().items():
            self._tb.add_scalar(k, v, step)

    def save(self) -> None:
        if not self.dist.main:
            return
        if self._tb is not None:  # curves up to this iteration are on disk before the checkpoint that ends them
            self._tb.flush()
        sch = self.schedule
        state = {
            "iteration": self.iteration,
            "history": self.history,
            "plan": self._plan.state(time.monotonic() - self._plan_t0) if self._plan is not None else self._saved_plan,
            **self.extra_state(),
            "torch_rng": torch.get_rng_state().tolist(),
            "saved_at": time.time(),
        }
        weights = {f"{n}.{k}": v for n, m in self.modules().items() for k, v in m.state_dict().items()}
        ck = checkpoint.Checkpoint(weights, {k: o.state_dict() for k, o in self.optimizers().items()}, state)
        checkpoint.save(self.model_dir, self.pack_checkpoint(ck))
        self.write_config()
        if sch.backup_every and self.iteration % sch.backup_every == 0:
            checkpoint.backup(self.model_dir, self.iteration, sch.backups_kept)

    def write_previews(self) -> None:
        self.preview()
        if self.history and self.curve_keys:
            write_atomic(self.model_dir / "losses.png", loss_curve_png(self.history, self.curve_keys))


class StopRequest:
    """Ctrl+C during a run, made safe: the first SIGINT only sets ``requested`` and the loop stops at the next
    iteration boundary, so it cannot land inside a first-time import, a preview or a save and break the save that
    follows (a KeyboardInterrupt inside ``import matplotlib.pyplot`` left it half-imported, and the final preview
    then failed); a second SIGINT interrupts at once. Only the main thread can own the handler; elsewhere, and where
    SIGINT is ignored, nothing changes."""

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            old = signal.getsignal(signal.SIGINT)
            if old is not signal.SIG_IGN:
                self._old = old
                signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None


def _resolve_scalars(steps: list[dict[str, Any]]) -> list[dict[str, float]]:
    """The steps' scalar dicts with every tensor read back as a float: one transfer per device for all of them."""
    out = [{k: v for k, v in s.items() if not isinstance(v, torch.Tensor)} for s in steps]
    by_device: dict[torch.device, list[tuple[int, str, torch.Tensor]]] = {}
    for i, s in enumerate(steps):
        for k, v in s.items():
            if isinstance(v, torch.Tensor):
                by_device.setdefault(v.device, []).append((i, k, v))
    for items in by_device.values():
        values = torch.stack([v.detach().float().reshape(()) for _, _, v in items]).tolist()
        for (i, k, _), value in zip(items, values):
            out[i][k] = value
    return [{k: s[k] for k in step} for s, step in zip(out, steps)]  # the step's key order


def hash_seed(seed: int, iteration: int) -> int:
    """A 63-bit seed for iteration ``iteration`` of a run seeded ``seed``."""
    return int(np.random.SeedSequence([seed, iteration]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def history_mean(history: dict[str, list[float]], key: str, start: int, stop: int | None = None) -> float:
    vals = history.get(key, [])[start:stop]
    return float(np.mean(vals)) if vals else math.nan
