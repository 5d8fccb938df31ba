"""The ``facelab`` command: parse arguments and dispatch to the stages; no pipeline logic lives here.

One module per command group turns its arguments into the stage's typed config, calls one stage function and
prints the result's ``summary()``."""

from __future__ import annotations

import argparse

from facelab import __version__
from facelab.cli.augment import add_augment
from facelab.cli.common import prepare_process, run
from facelab.cli.detect import add_detect
from facelab.cli.evaluate import add_evaluate, add_fid
from facelab.cli.export import add_export
from facelab.cli.extract import add_extract
from facelab.cli.faceset import add_faceset
from facelab.cli.mask import add_mask
from facelab.cli.merge import add_inspect, add_merge
from facelab.cli.studio import add_studio
from facelab.cli.swap import add_swap
from facelab.cli.train import add_train

__all__ = ["build_parser", "main"]

# in the order `facelab --help` lists them
_COMMANDS = (
    add_extract,
    add_detect,
    add_faceset,
    add_train,
    add_augment,
    add_mask,
    add_merge,
    add_swap,
    add_inspect,
    add_fid,
    add_evaluate,
    add_export,
    add_studio,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="facelab", description="Face swapping for video: extract, train, merge, measure.")
    p.add_argument("--version", action="version", version=f"facelab {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = p.add_subparsers(
        dest="command",
        required=True,
        metavar="{extract,detect,faceset,train,augment,mask,merge,swap,inspect,evaluate,fid,export,studio}",
    )
    for add in _COMMANDS:
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    prepare_process()
    return run(build_parser().parse_args(argv))
