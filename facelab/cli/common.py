"""What every command module shares: options generated from a config dataclass, and running a command with
facelab's error conventions (one line on stderr, exit 2; a traceback only with -v)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import warnings
from dataclasses import fields
from typing import Any, TypeVar

from facelab.errors import FacelabError
from facelab.runs.progress import STUDIO_JOB_ENV

T = TypeVar("T")
Subparsers = argparse._SubParsersAction  # what add_subparsers returns: each command module adds its parsers to it


def add_config_options(p: argparse.ArgumentParser, cls: type, title: str) -> None:
    """One option per dataclass field (defaults stay in config.py; None here means "not given")."""
    g = p.add_argument_group(title)
    for f in fields(cls):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(cls(), f.name)
        if isinstance(default, bool):
            g.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=f"(default: {default})")
        else:
            g.add_argument(
                flag, type=str if default is None else type(default), default=None, help=f"(default: {default})"
            )


def config_from(a: argparse.Namespace, cls: type[T]) -> T:
    """An instance of the config dataclass ``cls`` from the options named like its fields (the others keep their
    defaults)."""
    return cls(**{f.name: getattr(a, f.name) for f in fields(cls) if hasattr(a, f.name)})


def given_options(a: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of ``cls`` given on the command line (``add_config_options`` leaves the others None)."""
    return {f.name: getattr(a, f.name) for f in fields(cls) if getattr(a, f.name) is not None}


def prepare_process() -> None:
    """Process-wide settings, made before anything loads: a closed pipe ends the program quietly (``facelab
    inspect x | head``, like other CLI tools), and mediapipe's / TensorFlow's C++ start-up chatter stays off."""
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if os.environ.get(STUDIO_JOB_ENV) == "1":
        # the studio stops a job with SIGINT (the trainers save): a studio started where SIGINT is ignored (a
        # script's `cmd &`) passes that on to its jobs, which would then be killed at the grace's end unsaved
        signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run(a: argparse.Namespace) -> int:
    """Run the parsed command ``a.func``; facelab's errors become one line on stderr and exit status 2."""
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO, format="facelab: %(message)s")
    _quiet_native_logs()
    try:
        return a.func(a)
    except (FacelabError, ValueError) as e:  # ValueError: bad option values from the stages (unknown detector, ...)
        if a.verbose:
            raise
        print(f"facelab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("facelab: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


def _quiet_native_logs() -> None:
    warnings.filterwarnings("ignore", message=".*GetPrototype.*")
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass
