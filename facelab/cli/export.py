"""``facelab export``: a trained model's dst->src swap as one file (TorchScript, ONNX, or DFL's .dfm)."""

from __future__ import annotations

import argparse

from facelab.cli.common import Subparsers, add_config_options, given_options
from facelab.config import ExportConfig


def add_export(sub: Subparsers) -> None:
    p = sub.add_parser(
        "export", help="write a trained model's dst->src swap as TorchScript, ONNX or DFL's .dfm (DeepFaceLive)"
    )
    p.add_argument("--model", required=True, help="model folder from 'facelab train'")
    p.add_argument("-o", "--output", required=True, help="file to write (.pt, .onnx, .dfm)")
    add_config_options(p, ExportConfig, "export")
    p.set_defaults(func=cmd_export)


def cmd_export(a: argparse.Namespace) -> int:
    from facelab.export import export_model

    print(export_model(a.model, a.output, ExportConfig(**given_options(a, ExportConfig))).summary())
    return 0
