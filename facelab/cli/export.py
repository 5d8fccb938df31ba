"""``facelab export``: a trained model's dst->src swap as one TorchScript file."""

from __future__ import annotations

import argparse

from facelab.cli.common import Subparsers


def add_export(sub: Subparsers) -> None:
    p = sub.add_parser("export", help="write a trained model's dst->src swap as a TorchScript file")
    p.add_argument("--model", required=True, help="model folder from 'facelab train'")
    p.add_argument("-o", "--output", required=True, help="TorchScript file to write (.pt)")
    p.set_defaults(func=cmd_export)


def cmd_export(a: argparse.Namespace) -> int:
    from facelab.export import export_model

    print(export_model(a.model, a.output).summary())
    return 0
