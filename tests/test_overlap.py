"""Outputs never overwrite inputs: every command whose output would replace an input, land inside an input folder,
or empty a folder holding an input refuses with one line naming both, before it writes or loads anything."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import snapshot, write_h264
from facelab.errors import FacelabError
from facelab.io.paths import refuse_overlap


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A workspace of inputs: a clip, a frame folder, a faceset, a DFL folder, a model and a generator folder.
    Every command below refuses before it reads them, so they need not be valid of their kind."""
    img = np.full((32, 32, 3), 128, np.uint8)
    write_h264(tmp_path / "clip.mp4", [img] * 3)
    write_h264(tmp_path / "swapped.mp4", [img] * 3)
    for d in ("frames", "fs", "fs2", "dfl", "model", "gan"):
        (tmp_path / d).mkdir()
    for d in ("frames", "fs", "fs2", "dfl"):
        cv2.imwrite(str(tmp_path / d / "000001.png"), img)
    (tmp_path / "model" / "config.json").write_text("{}")
    (tmp_path / "gan" / "config.json").write_text("{}")
    return tmp_path


OVERWRITE = "output would overwrite the"
INSIDE = "output would land inside the"

# (command line, the path the error starts with, the rest of the line); {w} is the workspace
CASES = [
    ("merge {w}/clip.mp4 --model {w}/model -o {w}/clip.mp4", "clip.mp4", f"{OVERWRITE} dst video (use another -o)"),
    (
        "merge {w}/clip.mp4 --model {w}/model -o {w}/model/out.mp4",
        "model/out.mp4",
        f"{INSIDE} model folder {{w}}/model (use another -o)",
    ),
    (
        "merge {w}/clip.mp4 --model {w}/model --faceset {w}/fs -o {w}/o.mp4 --mask-output {w}/fs",
        "fs",
        f"{OVERWRITE} dst faceset (use another --mask-output)",
    ),
    ("merge {w}/frames --model {w}/model -o {w}/frames/", "frames", f"{OVERWRITE} dst folder (use another -o)"),
    (
        "merge {w}/clip.mp4 --model {w}/model -o {w}/model/sheet.png --preview 0",
        "model/sheet.png",
        f"{INSIDE} model folder {{w}}/model (use another -o)",
    ),
    ("extract {w}/clip.mp4 -o {w}/clip.mp4", "clip.mp4", f"{OVERWRITE} input video (use another -o)"),
    ("extract {w}/frames -o {w}/frames/faces", "frames/faces", f"{INSIDE} input folder {{w}}/frames (use another -o)"),
    ("extract {w}/frames -o {w}/fs2 --debug {w}/frames", "frames", f"{OVERWRITE} input folder (use another --debug)"),
    (
        "train --src {w}/fs --dst {w}/fs2 --model {w}/fs2/model --iters 1",
        "fs2/model",
        f"{INSIDE} dst faceset {{w}}/fs2 (use another --model)",
    ),
    (
        "train --src {w}/fs --dst {w}/fs2 --model {w}/fs --iters 1",
        "fs",
        f"{OVERWRITE} src faceset (use another --model)",
    ),
    ("faceset import {w}/dfl -o {w}/dfl", "dfl", f"{OVERWRITE} DFL folder (use another -o)"),
    ("faceset import {w}/dfl -o {w}/dfl/out", "dfl/out", f"{INSIDE} DFL folder {{w}}/dfl (use another -o)"),
    ("faceset dedupe {w}/fs --trash {w}/fs/trash", "fs/trash", f"{INSIDE} faceset {{w}}/fs (use another --trash)"),
    ("faceset filter {w}/fs --min-blur 1 --trash {w}/fs", "fs", f"{OVERWRITE} faceset (use another --trash)"),
    ("faceset info {w}/fs --plot {w}/fs/pose.png", "fs/pose.png", f"{INSIDE} faceset {{w}}/fs (use another --plot)"),
    (
        "faceset coverage {w}/fs {w}/fs2 --png {w}/fs2/c.png",
        "fs2/c.png",
        f"{INSIDE} dst faceset {{w}}/fs2 (use another --png)",
    ),
    (
        "faceset sort {w}/fs --by blur --order-file {w}/fs/order.txt",
        "fs/order.txt",
        f"{INSIDE} faceset {{w}}/fs (use another --order-file)",
    ),
    (
        "evaluate --src {w}/fs --dst {w}/clip.mp4 --swapped {w}/swapped.mp4 -o {w}/fs",
        "fs",
        f"{OVERWRITE} src faceset (use another -o)",
    ),
    (
        "evaluate --src {w}/fs --dst {w}/clip.mp4 --swapped {w}/fs2/swapped_faces/x.mp4 -o {w}/fs2",
        "fs2/swapped_faces",
        "output folder is emptied before it is written and holds the swapped video "
        "{w}/fs2/swapped_faces/x.mp4 (use another -o)",
    ),
    (
        "augment train --faceset {w}/fs --out {w}/fs/gan --kimg 1",
        "fs/gan",
        f"{INSIDE} faceset {{w}}/fs (use another --out)",
    ),
    (
        "augment sample --gan {w}/gan --faceset {w}/fs2 --dst {w}/fs2 -n 1",
        "fs2",
        f"{OVERWRITE} dst faceset (use another --faceset)",
    ),
    (
        "augment export --gan {w}/gan --out {w}/gan/g.safetensors",
        "gan/g.safetensors",
        f"{INSIDE} generator folder {{w}}/gan (use another --out)",
    ),
    ("export --model {w}/model -o {w}/model", "model", f"{OVERWRITE} model folder (use another -o)"),
    ("swap {w}/frames {w}/clip.mp4 -o {w}/clip.mp4 --iters 1", "clip.mp4", f"{OVERWRITE} dst video (use another -o)"),
    (
        "swap {w}/frames {w}/clip.mp4 -o {w}/o.mp4 --iters 1 --workdir {w}/frames/work",
        "frames/work",
        f"{INSIDE} src folder {{w}}/frames (use another --workdir)",
    ),
]


@pytest.mark.parametrize("cmd,path,problem", CASES, ids=[c[0].split(" -")[0].replace("{w}/", "") for c in CASES])
def test_output_over_an_input_is_refused(ws: Path, run_cli, cmd: str, path: str, problem: str) -> None:
    before = snapshot(ws)
    rc, out, err = run_cli(cmd.format(w=ws).split())
    assert rc == 2
    assert err.strip() == f"facelab: error: {ws}/{path}: {problem.format(w=ws)}"
    assert snapshot(ws) == before  # nothing written, nothing created


def test_paths_are_compared_resolved(tmp_path: Path) -> None:
    """A symlink, a hard link, ".." or a relative path to an input is that input."""
    (tmp_path / "d").mkdir()
    video = tmp_path / "d" / "in.mp4"
    video.write_bytes(b"x")
    (tmp_path / "link.mp4").symlink_to(video)
    (tmp_path / "hard.mp4").hardlink_to(video)
    for out in (tmp_path / "link.mp4", tmp_path / "hard.mp4", tmp_path / "d" / ".." / "d" / "in.mp4"):
        with pytest.raises(FacelabError, match="would overwrite the input video"):
            refuse_overlap({"input video": video}, {"-o": out})
    (tmp_path / "dlink").symlink_to(tmp_path / "d")
    with pytest.raises(FacelabError, match="would land inside the faceset"):
        refuse_overlap({"faceset": tmp_path / "dlink"}, {"--trash": tmp_path / "d" / "trash"})
    # siblings, a parent output folder (not emptied) and None are fine
    refuse_overlap({"input video": video, "faceset": None}, {"-o": tmp_path / "d" / "in2.mp4", "--x": tmp_path})
