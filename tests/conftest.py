"""Shared fixtures. Tests that need the real-media set at ../shared/data skip with a reason when it is absent;
the rest run on faces that ship inside packages (matplotlib's Grace Hopper, scikit-image's astronaut)."""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from studio_browser import chromium, studio_faces, studio_page  # noqa: F401  (the studio tests' shared fixtures)

os.environ.setdefault("GLOG_minloglevel", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def shared_path(rel: str) -> Path:
    p = SHARED / rel
    if not p.exists():
        pytest.skip(f"real-media test set not available ({p} missing; it lives in ../shared/data)")
    return p


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_path("")


@pytest.fixture(scope="session")
def hopper() -> np.ndarray:
    """Grace Hopper, 600x512 RGB, shipped inside matplotlib (public domain)."""
    from facelab.demo import hopper_image

    return hopper_image()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """Eileen Collins, 512x512 RGB, shipped inside scikit-image (public domain)."""
    from facelab.demo import astronaut_image

    return astronaut_image()


@pytest.fixture(scope="session")
def finder():
    from facelab.faces.finder import FaceFinder

    return FaceFinder()


def write_h264(path: Path, frames: list[np.ndarray], pix_fmt: str = "yuv420p", fps: int = 30) -> Path:
    """Encode RGB frames as an H.264 file without audio (yuv444p allows odd sizes)."""
    import av

    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.height, vs.width = frames[0].shape[:2]
        vs.pix_fmt = pix_fmt
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            f.pts = i
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
    return path


def cut_faststart(src: Path, dst: Path, keep: float) -> Path:
    """``src`` remuxed with its index (moov) at the front, as web videos are ("faststart"), then cut after
    ``keep`` of its bytes: the container still declares every frame, the data of most of them is gone."""
    import av

    full = dst.with_name(dst.stem + ".full" + dst.suffix)
    with av.open(str(src)) as i, av.open(str(full), "w", options={"movflags": "faststart"}) as o:
        streams = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for packet in i.demux():
            if packet.dts is not None:  # the demuxer's flush packets carry no data
                packet.stream = streams[packet.stream.index]
                o.mux(packet)
    data = full.read_bytes()
    full.unlink()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (capsys/capfd swap it), like the CLI's own handler."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # noqa: ANN001
        pass


@pytest.fixture
def run_cli(capfd) -> Callable[[list[str]], tuple[int, str, str]]:
    """``run_cli(argv) -> (rc, out, err)``: ``facelab.cli.main`` in-process, with what a user would see on the
    terminal. pytest's own log handlers keep ``logging.basicConfig`` in ``cli.run`` from installing the CLI's
    handler, so one with the same format stands in for it; argparse's SystemExit becomes the exit code."""
    from facelab.cli import main

    def call(argv: list[str]) -> tuple[int, str, str]:
        capfd.readouterr()  # start clean: only this call's output
        root = logging.getLogger()
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("facelab: %(message)s"))
        old_level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as e:  # argparse usage errors
            rc = e.code if isinstance(e.code, int) else 1
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
        out, err = capfd.readouterr()
        return rc, out, err

    return call


def snapshot(paths: list[Path] | Path, ignore: tuple[str, ...] = (".facelab-index.sqlite",)) -> dict[str, str]:
    """sha256 of every file under ``paths`` (files or folders), keyed by path, plus each folder itself (so a new
    or removed entry shows). facelab's own caches (``ignore`` names, and their ``-wal``/``-journal`` side files)
    are left out: they may be rebuilt without changing any input."""
    result: dict[str, str] = {}
    for root in [paths] if isinstance(paths, Path) else paths:
        root = Path(root)
        items = [root] if root.is_file() else sorted(root.rglob("*")) if root.is_dir() else []
        if root.is_dir():
            result[str(root)] = "<dir>"
        for p in items:
            if any(p.name.startswith(name) for name in ignore):
                continue
            if p.is_dir():
                result[str(p)] = "<dir>"
            elif p.is_file():
                try:
                    result[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
                except PermissionError:  # a chmod-000 input: its mode and size stand in for its bytes
                    st = p.stat()
                    result[str(p)] = f"<unreadable mode={st.st_mode:o} size={st.st_size}>"
    return result
