"""Per-frame merge settings (``facelab merge --settings FILE``, facelab/merge/settings.py): the file's checks, a real
merge where a frame range changes erode and blur, and the single-frame renderer the studio's merge tuner uses
giving the merge's own pixels, bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from merge_job import FRAMES, merge_job

from facelab.cli import main as cli
from facelab.config import MergeConfig
from facelab.errors import FacelabError
from facelab.io.media import iter_frames
from facelab.io.seek import FrameReader
from facelab.merge.frame import FrameRenderer
from facelab.merge.pipeline import merge
from facelab.merge.settings import FORMAT, load_settings, parse_settings


@pytest.fixture(scope="module")
def job(tmp_path_factory, hopper, astronaut) -> Path:
    return merge_job(tmp_path_factory, hopper, astronaut)


def _write(path: Path, data: object) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _pngs(folder: Path) -> list[np.ndarray]:
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(folder.glob("*.png"))]


# --- the file ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ("{not json", "not JSON (line 1"),
        ([1, 2], "expected a JSON object"),
        ({"format": "other/1"}, "format is 'other/1'"),
        ({"format": FORMAT, "extra": 1}, "unknown key 'extra'"),
        ({"format": FORMAT, "base": {"erode": "5"}}, "base.erode: expected an integer -400..400, got '5'"),
        ({"format": FORMAT, "base": {"erode": True}}, "base.erode: expected an integer"),
        ({"format": FORMAT, "base": {"color": "xyz"}}, "base.color: 'xyz' is not one of none, rct"),
        ({"format": FORMAT, "base": {"wobble": 1}}, "base: unknown setting 'wobble'"),
        ({"format": FORMAT, "base": {"crf": 20}}, "base.crf: applies to the whole merge, not per frame (give --crf"),
        (
            {"format": FORMAT, "ranges": [{"start": 0, "end": 3, "settings": {"batch": 2}}]},
            "ranges[0].settings.batch: applies to the whole merge, not per frame (give --batch",
        ),
        ({"format": FORMAT, "ranges": [{"start": 5, "end": 3, "settings": {}}]}, "ranges[0]: end 3 is before start 5"),
        ({"format": FORMAT, "ranges": [{"start": -1, "end": 3}]}, "ranges[0].start: expected a frame number >= 0"),
        ({"format": FORMAT, "ranges": [{"start": 0, "end": 3, "what": 1}]}, "ranges[0]: unknown key 'what'"),
        ({"format": FORMAT, "ranges": {}}, "ranges: expected a list"),
        ({"format": FORMAT, "base": {"motion_blur": 101}}, "base.motion_blur: expected an integer 0..100, got 101"),
    ],
)
def test_bad_settings_files_are_one_line_errors_naming_the_file(tmp_path, data, says):
    path = _write(tmp_path / "s.json", data)
    with pytest.raises(FacelabError) as e:
        load_settings(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: ") and says in msg and "\n" not in msg


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(FacelabError, match="no such merge settings file"):
        load_settings(tmp_path / "nope.json")


def test_later_ranges_win_and_other_frames_use_base():
    s = parse_settings(
        {
            "format": FORMAT,
            "base": {"blur": 10},
            "ranges": [
                {"start": 2, "end": 6, "settings": {"erode": 5, "color": "lct"}},
                {"start": 4, "end": 8, "settings": {"erode": 9}},
            ],
        }
    )
    run = MergeConfig(batch=3)
    assert s.settings_for_frame(0, run) == MergeConfig(batch=3, blur=10)
    assert s.settings_for_frame(2, run) == MergeConfig(batch=3, blur=10, erode=5, color="lct")
    assert s.settings_for_frame(5, run) == MergeConfig(batch=3, blur=10, erode=9, color="lct")
    assert s.settings_for_frame(8, run) == MergeConfig(batch=3, blur=10, erode=9)
    assert s.settings_for_frame(9, run) == MergeConfig(batch=3, blur=10)
    assert parse_settings(json.loads(s.dumps())) == s  # what the studio saves reads back the same


# --- merging with it ---------------------------------------------------------------------------------------------

BASE = {"blur": 16, "motion_blur": 100}  # motion blur on: per-frame settings must keep each frame's motion
RANGE = (5, 9)


def _settings_file(path: Path) -> Path:
    return _write(
        path,
        {
            "format": FORMAT,
            "base": BASE,
            "ranges": [{"start": RANGE[0], "end": RANGE[1], "settings": {"erode": 40, "blur": 120}}],
        },
    )


@pytest.fixture(scope="module")
def merged(job, tmp_path_factory) -> dict[str, Path]:
    """The same dst merged plainly with the base settings and through the CLI with a settings file."""
    out = tmp_path_factory.mktemp("merged")
    settings = _settings_file(out / "tuned.json")
    merge(job / "dst.mp4", job / "model", out / "plain", MergeConfig(**BASE), faceset=job / "dst_fs")
    code = cli(
        [
            "merge",
            str(job / "dst.mp4"),
            "--model",
            str(job / "model"),
            "--faceset",
            str(job / "dst_fs"),
            "--settings",
            str(settings),
            "-o",
            str(out / "tuned"),
        ]
    )
    assert code == 0
    return {"plain": out / "plain", "tuned": out / "tuned", "settings": settings}


def test_a_range_changes_its_frames_and_only_those(merged):
    plain, tuned = _pngs(merged["plain"]), _pngs(merged["tuned"])
    assert len(plain) == len(tuned) == FRAMES
    for i, (a, b) in enumerate(zip(plain, tuned)):
        if RANGE[0] <= i <= RANGE[1]:
            assert (a != b).any(), f"frame {i} is in the range but unchanged"
        else:
            np.testing.assert_array_equal(a, b, err_msg=f"frame {i} is outside the range but changed")
    record = json.loads(Path(str(merged["tuned"]) + ".merge.json").read_text())
    assert record["settings"]["ranges"][0]["settings"] == {"erode": 40, "blur": 120}


def test_cli_refuses_per_frame_options_beside_a_settings_file(job, merged, tmp_path, capsys):
    args = ["merge", str(job / "dst.mp4"), "--model", str(job / "model"), "-o", str(tmp_path / "o")]
    assert cli([*args, "--settings", str(merged["settings"]), "--erode", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--erode: a per-frame setting" in err and len(err.splitlines()) == 1
    bad = _write(tmp_path / "bad.json", {"format": FORMAT, "ranges": [{"start": 0, "end": 1, "settings": {"crf": 9}}]})
    assert cli([*args, "--settings", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "ranges[0].settings.crf: applies to the whole merge" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


# --- one frame alone ---------------------------------------------------------------------------------------------


def test_frame_renderer_gives_the_merge_frames_bit_for_bit(job, merged):
    tuned = _pngs(merged["tuned"])
    settings = load_settings(merged["settings"])
    r = FrameRenderer(job / "dst.mp4", job / "model", job / "dst_fs")
    for i in (12, 0, RANGE[0], RANGE[1], RANGE[1] + 1, 7, 3):  # out of order: the reader seeks
        np.testing.assert_array_equal(r.render_settings(i, settings), tuned[i], err_msg=f"frame {i}")
    assert r.predicted(7)
    # a cached prediction, other settings: the same as rendering afresh
    fresh = FrameRenderer(job / "dst.mp4", job / "model", job / "dst_fs")
    cfg = MergeConfig(erode=-20, blur=40, color="lct", sharpen="gaussian", sharpen_amount=20, face_scale=10)
    np.testing.assert_array_equal(r.render(7, cfg), fresh.render(7, cfg))


def test_frame_reader_decodes_what_iter_frames_decodes(tmp_path, astronaut):
    clip = tmp_path / "gop.mp4"  # keyframes every 4 frames and B-frames: real seeks
    with av.open(str(clip), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width = vs.height = 128
        vs.pix_fmt = "yuv420p"
        vs.options = {"g": "4", "bf": "2", "preset": "veryfast"}
        for i in range(30):
            img = np.roll(cv2.resize(astronaut, (128, 128)), 3 * i, axis=1)
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            f.pts = i
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
    want = [f.image for f in iter_frames(clip)]
    reader = FrameReader(clip, cache=2)
    assert len(reader) == len(want) == 30
    for i in (29, 3, 17, 18, 19, 0, 9, 28, 1):
        np.testing.assert_array_equal(reader[i], want[i], err_msg=f"frame {i}")
    with pytest.raises(FacelabError, match="no frame 30"):
        reader[30]
    reader.close()
