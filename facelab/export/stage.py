"""``facelab export``: a trained model folder -> one file in a chosen format (TorchScript, ONNX or DFL's .dfm)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from facelab.config import ExportConfig
from facelab.errors import FacelabError
from facelab.io.paths import refuse_overlap
from facelab.models.load import load_model

FORMATS = ("torchscript", "onnx", "dfm")
_BY_SUFFIX = {".dfm": "dfm", ".onnx": "onnx"}


@dataclass
class ExportResult:
    output: str
    archi: str
    resolution: int
    bytes_written: int
    seconds: float
    format: str = "torchscript"
    face_type: str = ""  # the model's face type

    def summary(self) -> str:
        r = self.resolution
        if self.format == "dfm":
            change = "" if self.face_type in ("", "whole_face") else f", re-cropped to {self.face_type} inside"
            return (
                f"{self.output}: DFL .dfm of {self.archi} @ {r} for DeepFaceLive / FaceFusion (in_face:0 1 x {r} x {r} "
                f"x 3 BGR whole face in [0, 1]{change}; outputs dst mask, swapped face BGR, swapped face mask)"
            )
        if self.format == "onnx":
            return (
                f"{self.output}: ONNX swap of {self.archi} @ {r} (input dst N x 3 x {r} x {r} RGB {self.face_type} "
                "face in [0, 1]; outputs face, mask_swap, mask_dst)"
            )
        return (
            f"{self.output}: TorchScript swap of {self.archi} @ {r} (input N x 3 x {r} x {r} RGB in [0, 1]; "
            "outputs face, swap mask, dst mask)"
        )


def resolve_format(fmt: str, output: str | Path) -> str:
    """The export format: ``fmt``, or for "auto" the one ``output``'s suffix names (TorchScript otherwise)."""
    fmt = fmt.strip().lower()
    if fmt == "auto":
        return _BY_SUFFIX.get(Path(output).suffix.lower(), "torchscript")
    if fmt not in FORMATS:
        raise FacelabError(f"unknown export format {fmt!r} (choose from auto, {', '.join(FORMATS)})")
    return fmt


def export_model(model_dir: str | Path, output: str | Path, cfg: ExportConfig | None = None) -> ExportResult:
    """Write the dst->src swap of the model in ``model_dir`` to ``output`` (atomically: no partial file, ever)."""
    cfg = cfg or ExportConfig()
    fmt = resolve_format(cfg.format, output)
    refuse_overlap({"model folder": model_dir}, {"-o": output})
    parent = Path(output).parent
    if not parent.is_dir():  # before the model is loaded and traced: fail in a second, not after the export
        raise FacelabError(f"{output}: folder {parent} does not exist")
    t0 = time.perf_counter()
    model, mcfg = load_model(model_dir)
    if fmt == "torchscript":
        from facelab.export.torchscript import export_swap_torchscript

        export_swap_torchscript(model, output)
    else:
        from facelab.export.onnx import export_swap_onnx

        export_swap_onnx(model, mcfg.face_type, mcfg.archi, output, fmt)
    size, seconds = Path(output).stat().st_size, time.perf_counter() - t0
    return ExportResult(str(output), mcfg.archi, mcfg.resolution, size, seconds, fmt, mcfg.face_type)
