"""``facelab export``: a trained model folder -> one file in a chosen format."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from facelab.export.torchscript import export_swap_torchscript
from facelab.io.paths import refuse_overlap
from facelab.models.load import load_model


@dataclass
class ExportResult:
    output: str
    archi: str
    resolution: int
    bytes_written: int
    seconds: float

    def summary(self) -> str:
        r = self.resolution
        return (
            f"{self.output}: TorchScript swap of {self.archi} @ {r} (input N x 3 x {r} x {r} RGB in [0, 1]; "
            "outputs face, swap mask, dst mask)"
        )


def export_model(model_dir: str | Path, output: str | Path) -> ExportResult:
    """Write the dst->src swap of the model in ``model_dir`` to ``output`` as TorchScript."""
    refuse_overlap({"model folder": model_dir}, {"-o": output})
    t0 = time.perf_counter()
    model, cfg = load_model(model_dir)
    export_swap_torchscript(model, output)
    return ExportResult(str(output), cfg.archi, cfg.resolution, Path(output).stat().st_size, time.perf_counter() - t0)
