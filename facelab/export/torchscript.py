"""TorchScript export of a swap model's dst->src path (loads with ``torch.jit.load``, no facelab needed)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch

from facelab.io.atomic import write_atomic
from facelab.models.saehd import SAEHD, SwapModule


def export_swap_torchscript(model: SAEHD, path: str | Path, batch: int = 1) -> torch.jit.ScriptModule:
    """Trace ``model.swap`` to a TorchScript file (loads with ``torch.jit.load``; any batch size works)."""
    param = next(model.parameters())
    example = torch.rand(batch, 3, model.resolution, model.resolution, device=param.device, dtype=param.dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated upstream but still loads
            traced = torch.jit.trace(SwapModule(model), example)
    finally:
        model.train(was_training)
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    write_atomic(Path(path), buf.getvalue())  # a crash or a folder named -o leaves no half-written file
    return traced
