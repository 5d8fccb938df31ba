"""``facelab studio [WORKSPACE]``: the browser UI over a workspace (README "Studio")."""

from __future__ import annotations

import argparse

from facelab.cli.common import Subparsers
from facelab.config import StudioConfig
from facelab.errors import FacelabError


def add_studio(sub: Subparsers) -> None:
    d = StudioConfig()
    p = sub.add_parser("studio", help="browser UI for a workspace: faceset grids, trash and restore")
    p.add_argument("workspace", nargs="?", default=".", help="folder of facesets, models, videos, runs (default: .)")
    p.add_argument("--port", type=int, default=d.port, help="(default: %(default)s)")
    p.add_argument(
        "--host",
        default=d.host,
        help="address to listen on (default: %(default)s); any other than loopback needs the token printed at start",
    )
    p.set_defaults(func=_cmd_studio)


def _cmd_studio(a: argparse.Namespace) -> int:
    try:  # the web stack is imported only here: the other commands never need it
        from facelab.studio.app import serve
    except ImportError as e:
        raise FacelabError(f"facelab studio needs {e.name} (pip install -r requirements.txt)") from e
    return serve(a.workspace, a.host, a.port)
