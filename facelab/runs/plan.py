"""A run's plan: how far through its limit (iterations or minutes) training is, for schedules that depend on it.

DFL trains at a constant learning rate for as long as the user lets it, which suits days on a GPU. A run with a
known budget (``--minutes 60`` on a CPU) learns more from the same time with a schedule shaped to that budget:
a short warm-up, then a cosine decay that ends near zero (the last steps at a small rate sharpen what the
large ones found), and the last part without random warp (DFL users switch warp off late to sharpen). Those
schedules read ``Plan.progress`` in [0, 1].

A plan survives a kill: its state goes into the checkpoint, and a rerun with the same limit continues it (a
minutes plan then trains only what was left of it). A rerun with another limit starts a new plan from there.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

WARMUP = 0.03  # fraction of the plan over which the lr rises linearly from WARMUP_FROM to 1
WARMUP_FROM = 0.1
FLOOR = 0.05  # the cosine ends at this fraction of the lr, not 0: the last iterations still learn


@dataclass
class Plan:
    """Iterations ``start_iter``..``end_iter``, or ``seconds`` of training (``done_seconds`` of them trained by
    earlier, interrupted runs of the same plan)."""

    start_iter: int
    end_iter: int | None = None
    seconds: float | None = None
    done_seconds: float = 0.0

    def progress(self, iteration: int, run_seconds: float) -> float:
        """Fraction of the plan done after ``run_seconds`` of this run at ``iteration``, clipped to [0, 1]."""
        if self.end_iter is not None:
            span = max(1, self.end_iter - self.start_iter)
            return min(1.0, max(0.0, (iteration - self.start_iter) / span))
        assert self.seconds is not None
        return min(1.0, max(0.0, (self.done_seconds + run_seconds) / max(self.seconds, 1e-9)))

    def state(self, run_seconds: float) -> dict[str, Any]:
        return {**asdict(self), "done_seconds": self.done_seconds + run_seconds}


def plan_for_run(
    iteration: int, end_iter: int | None, minutes: float | None, saved: dict[str, Any] | None
) -> tuple[Plan, float | None]:
    """This run's plan and its minute limit. ``end_iter`` is the run's (or the config's planned) last iteration;
    ``saved`` is the plan of the checkpoint resumed from. An unfinished saved plan with the same limit continues."""
    old = Plan(**saved) if saved else None
    if end_iter is not None:
        if old is not None and old.end_iter == end_iter and old.start_iter <= iteration < end_iter:
            return old, minutes
        return Plan(iteration, end_iter=end_iter), minutes
    assert minutes is not None
    total = minutes * 60
    if old is not None and old.seconds is not None and math.isclose(old.seconds, total) and old.done_seconds < total:
        return old, (total - old.done_seconds) / 60
    return Plan(iteration, seconds=total), minutes


def budget_lr_factor(progress: float) -> float:
    """Learning-rate multiplier at ``progress`` of a plan: linear warm-up from WARMUP_FROM over the first WARMUP,
    then half a cosine from 1 down to FLOOR at the end."""
    p = min(1.0, max(0.0, progress))
    if p < WARMUP:
        return WARMUP_FROM + (1 - WARMUP_FROM) * p / WARMUP
    q = (p - WARMUP) / (1 - WARMUP)
    return FLOOR + (1 - FLOOR) * (1 + math.cos(math.pi * q)) / 2


__all__ = ["FLOOR", "WARMUP", "Plan", "budget_lr_factor", "plan_for_run"]
