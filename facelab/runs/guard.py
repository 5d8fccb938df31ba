"""Guards a training step uses before it updates any weight."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor


class NonFiniteLossError(FloatingPointError):
    """A loss came out NaN or infinite; the trainer skips the step (and rolls back if it persists)."""

    def __init__(self, name: str, value: float) -> None:
        super().__init__(f"loss {name!r} is not finite ({value})")
        self.name = name
        self.value = value


def finite_or_raise(losses: Mapping[str, Tensor | float]) -> Mapping[str, Tensor | float]:
    """Return ``losses`` unchanged if every element of every value is finite, else raise
    :class:`NonFiniteLossError` naming the first bad one. One device sync in the good case."""
    tensors = {k: torch.as_tensor(v) for k, v in losses.items()}
    if not tensors:
        return losses
    dev = next(iter(tensors.values())).device
    flags = [torch.isfinite(t.detach()).all().to(dev) for t in tensors.values()]
    if bool(torch.stack(flags).all()):  # the only sync when all is well
        return losses
    for (name, t), ok in zip(tensors.items(), flags, strict=True):
        if not ok:
            bad = t.detach().flatten()
            value = float(bad[~torch.isfinite(bad)][0])
            raise NonFiniteLossError(name, value)
    raise AssertionError("unreachable")
