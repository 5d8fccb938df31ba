"""Progress reporting shared by the stages and their front ends: a terminal bar, and the adapter that turns a
``RunLoop``'s per-iteration scalars into ``progress(done, total, postfix)`` calls."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

# progress(done, total, postfix): done and total count from the start of this run (total None = open-ended)
RunProgress = Callable[[int, int | None, str], None]
Scalars = dict[str, Any]


STUDIO_JOB_ENV = "FACELAB_STUDIO_JOB"  # "1" in the environment of the studio's job processes (see cli.common)


class ProgressBar:
    """tqdm bar with rate and ETA on stderr; silent when stderr is not a terminal unless FACELAB_PROGRESS=1."""

    def __init__(self, desc: str, unit: str) -> None:
        self.desc, self.unit = desc, unit
        self.bar: Any = None  # created on the first update, when the total is known

    def __enter__(self) -> ProgressBar:
        return self

    def update(self, done: int, total: int | None, postfix: str | None = None) -> None:
        if self.bar is None:
            from tqdm import tqdm

            disable = not (sys.stderr.isatty() or os.environ.get("FACELAB_PROGRESS") == "1")
            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, disable=disable, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)
        if postfix is not None:
            self.bar.set_postfix_str(postfix)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def run_progress(
    progress: RunProgress | None, start: int, target: int | None, postfix: Callable[[Scalars], str]
) -> Callable[[Scalars], None] | None:
    """A ``RunLoop.run`` progress callback counting from iteration ``start`` towards ``target`` (total iterations;
    None or 0 = a time limit, no total), with ``postfix(scalars)`` as the bar's loss readout."""
    if progress is None:
        return None
    total = (target - start) if target else None

    def show(scalars: Scalars) -> None:
        progress(scalars["iteration"] - start, total, postfix(scalars))

    return show
