"""Extraction end to end: package-shipped faces, generated clips, real media when present, and bad input."""

from __future__ import annotations

import errno
import json
import re
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import cut_faststart, shared_path, write_h264
from facelab.cli import main as cli
from facelab.config import ExtractConfig
from facelab.demo import write_motion_clip
from facelab.errors import FacelabError, MediaError
from facelab.extract.pipeline import STATE_FILE, extract
from facelab.faceset.store import face_files, iter_faceset, read_face, read_meta
from facelab.io.media import iter_frames

SMALL = ExtractConfig(size=128)


def _write(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory, astronaut) -> Path:
    return write_motion_clip(astronaut, tmp_path_factory.mktemp("clip") / "astro.mp4", frames=30, size=256)


def test_photos_give_one_aligned_face_each(tmp_path, hopper, astronaut):
    src = tmp_path / "in"
    src.mkdir()
    _write(src / "hopper.jpg", hopper)
    _write(src / "astronaut.png", astronaut)
    s = extract(src, tmp_path / "fs", ExtractConfig(size=256))
    assert (s.frames_read, s.faces_written, s.frames_without_face) == (2, 2, [])
    faces = dict(iter_faceset(tmp_path / "fs"))
    assert sorted(p.name for p in faces) == ["astronaut_0.jpg", "hopper_0.jpg"]
    for p, m in faces.items():
        img, _ = read_face(p)
        assert img.shape == (256, 256, 3) and m.size == 256 and m.face_type == "whole_face"
        assert m.frame_index is None and m.source_file.endswith(
            p.stem[:-2] + (".jpg" if "hopper" in p.name else ".png")
        )
        # aligned landmarks sit inside the crop, eyes level, face roughly frontal
        assert (m.landmarks > 0).all() and (m.landmarks < 256).all()
        assert abs(m.landmarks[45, 1] - m.landmarks[36, 1]) < 4
        assert abs(m.yaw) < 30 and m.blur > 0
        assert m.detector == "mediapipe" and m.landmarker == "dlib68+refine"


def test_video_frames_carry_index_and_timestamp(tmp_path, clip):
    s = extract(clip, tmp_path / "fs", ExtractConfig(size=128, every=3))
    assert s.frames_read == 10 and s.faces_written == 10
    metas = [m for _, m in iter_faceset(tmp_path / "fs")]
    assert [m.frame_index for m in metas] == list(range(0, 30, 3))
    np.testing.assert_allclose([m.timestamp for m in metas], np.arange(0, 30, 3) / 30, atol=1e-6)
    summary = json.loads((tmp_path / "fs" / "extract-summary.json").read_text())
    assert summary["faces_written"] == 10


def test_variable_frame_rate_timestamps_come_from_pts(tmp_path, astronaut):
    import av

    pts_ms = [0, 40, 80, 300, 340, 700]
    path = tmp_path / "vfr.mp4"
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width = vs.height = 256
        vs.pix_fmt = "yuv420p"
        vs.codec_context.time_base = vs.time_base = Fraction(1, 1000)
        img = cv2.resize(astronaut, (256, 256))
        for p in pts_ms:
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = p, Fraction(1, 1000)
            for k in vs.encode(f):
                c.mux(k)
        for k in vs.encode():
            c.mux(k)
    assert [round(f.timestamp, 3) for f in iter_frames(path)] == [p / 1000 for p in pts_ms]


def test_no_face_image_writes_nothing_and_is_listed(tmp_path, hopper):
    from skimage import data

    src = tmp_path / "in"
    src.mkdir()
    _write(src / "coffee.png", data.coffee())
    # no face in the whole input: an error, and no faceset folder (nor resume state) is left behind
    with pytest.raises(FacelabError, match=r"in: no faces found in 1 image$"):
        extract(src, tmp_path / "new" / "fs", SMALL)
    assert not (tmp_path / "new").exists()
    _write(src / "grace.png", hopper)
    s = extract(src, tmp_path / "fs", SMALL)
    assert s.faces_written == 1 and s.frames_without_face == ["coffee"]
    assert [p.name for p in face_files(tmp_path / "fs")] == ["grace_0.jpg"]


def test_only_like_keeps_the_reference_person(tmp_path, hopper, astronaut):
    src = tmp_path / "in"
    src.mkdir()
    _write(src / "a_hopper.jpg", hopper)
    _write(src / "b_astronaut.jpg", astronaut)
    _write(src / "c_hopper_flipped.jpg", hopper[:, ::-1])
    ref = _write(tmp_path / "ref.jpg", cv2.resize(hopper, (300, 256)))
    s = extract(src, tmp_path / "fs", ExtractConfig(size=128, only_like=str(ref)))
    assert sorted(p.name for p in face_files(tmp_path / "fs")) == ["a_hopper_0.jpg", "c_hopper_flipped_0.jpg"]
    assert s.faces_rejected_identity == 1


@pytest.mark.parametrize("jobs", [1, 2])  # one finder, or two in threads
def test_interrupted_extraction_resumes_without_duplicates(tmp_path, clip, jobs):
    out = tmp_path / "fs"
    cfg = replace(SMALL, jobs=jobs)

    def stop_after_12(done, total):
        if done == 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract(clip, out, cfg, progress=stop_after_12)
    first = {p.name for p in face_files(out)}
    assert 8 <= len(first) <= 12  # the last few may still have been in the writer when interrupted
    assert not list(out.glob(".*.tmp"))  # nothing half-written
    # a user deletes a bad face by hand before resuming: it must not come back
    victim = sorted(first)[0]
    (out / victim).unlink()
    s = extract(clip, out, cfg)
    assert s.resumed_from >= 8
    names = [p.name for p in face_files(out)]
    assert len(names) == len(set(names)) == 29 and victim not in names
    # a completed extraction is not redone
    again = extract(clip, out, cfg)
    assert again.frames_read == 0
    assert json.loads((out / STATE_FILE).read_text())["sources"]


def test_debug_frames_are_written(tmp_path, clip):
    extract(clip, tmp_path / "fs", ExtractConfig(size=128, every=10, debug_dir=str(tmp_path / "dbg")))
    dbg = sorted((tmp_path / "dbg").glob("*.jpg"))
    assert len(dbg) == 3 and cv2.imread(str(dbg[0])).shape == (256, 256, 3)


def test_multi_face_image_largest_first(tmp_path):
    img = shared_path("images/hard_multi_two_people.jpg")
    s = extract(img, tmp_path / "fs", SMALL)
    metas = [m for _, m in iter_faceset(tmp_path / "fs")]
    assert s.faces_written == 2 and [m.face_index for m in metas] == [0, 1]
    area = [(m.source_rect[2] - m.source_rect[0]) * (m.source_rect[3] - m.source_rect[1]) for m in metas]
    assert area[0] >= area[1]
    one = extract(img, tmp_path / "fs1", ExtractConfig(size=128, max_faces=1))
    assert one.faces_written == 1


# --- bad input: one-line errors, nothing half-written ------------------------------------------------------------


def _cli_error(capsys, *args: str) -> str:
    assert cli(list(args)) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_not_a_video(tmp_path, capsys):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video")
    assert "notes.mp4: not a video" in _cli_error(capsys, "extract", str(bad), "-o", str(tmp_path / "o"))


def test_zero_byte_file(tmp_path, capsys):
    (tmp_path / "empty.mov").write_bytes(b"")
    assert "empty.mov: empty file" in _cli_error(
        capsys, "extract", str(tmp_path / "empty.mov"), "-o", str(tmp_path / "o")
    )


def test_missing_input_and_unwritable_output(tmp_path, capsys, clip):
    assert "no such file" in _cli_error(capsys, "extract", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "o"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "not writable" in _cli_error(capsys, "extract", str(clip), "-o", str(blocker / "sub"))


def test_truncated_video_keeps_what_decodes(tmp_path, clip, caplog):
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    try:
        s = extract(cut, tmp_path / "fs", SMALL)
    except MediaError as e:  # a cut that removes the index is still one clear line
        assert "cut.mp4" in str(e)
        return
    assert 0 < s.faces_written < 30


def test_unreadable_image_in_folder_is_skipped_with_warning(tmp_path, hopper, caplog):
    src = tmp_path / "in"
    src.mkdir()
    _write(src / "good.jpg", hopper)
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    s = extract(src, tmp_path / "fs", SMALL)
    assert s.faces_written == 1 and s.unreadable == [str(src / "broken.jpg")]
    assert any("broken.jpg" in r.getMessage() for r in caplog.records)


def test_disk_full_leaves_no_partial_file(tmp_path, monkeypatch, hopper):
    import os

    from facelab.io import atomic

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", no_space)
    with pytest.raises(FacelabError, match="out of disk space"):
        extract(_write(tmp_path / "h.jpg", hopper), tmp_path / "fs", SMALL)
    # no partial file; the folder made for the run goes too when nothing is left in it (no_empty_dirs_left)
    assert (
        not (tmp_path / "fs").exists() or [p for p in os.listdir(tmp_path / "fs") if not p.startswith(".probe")] == []
    )


def test_cli_extract_and_detect(tmp_path, capsys, hopper):
    img = _write(tmp_path / "hopper.jpg", hopper)
    assert cli(["extract", str(img), "-o", str(tmp_path / "fs"), "--size", "128", "--face-type", "f"]) == 0
    assert "1 faces written" in capsys.readouterr().out
    assert cli(["detect", "--json", str(img)]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert len(rec["faces"]) == 1 and len(rec["faces"][0]["landmarks"]) == 68
    x0, y0, x1, y1 = rec["faces"][0]["box"]
    assert 150 < (x0 + x1) / 2 < 450 and 0 < y0 < y1 < 512


@pytest.mark.parametrize("matrix,band_at", [((0, 1, -1, 0), "top"), ((0, -1, 1, 0), "bottom"), ((1, 0, 0, 1), "left")])
def test_display_rotation_is_applied(tmp_path, matrix, band_at):
    """A phone video stores landscape pixels plus a display matrix; frames must come out upright."""
    import struct

    img = np.zeros((64, 96, 3), np.uint8)
    img[:, :20] = 255  # a white band on the left of the stored picture
    path = write_h264(tmp_path / "r.mp4", [img, img])
    data = bytearray(path.read_bytes())
    off = data.index(b"tkhd") + 44  # version-0 track header: the 3x3 display matrix (16.16 / 2.30 fixed point)
    a, b, cc, d = (v << 16 for v in matrix)
    data[off : off + 36] = struct.pack(">9i", a, b, 0, cc, d, 0, 0, 0, 1 << 30)
    path.write_bytes(bytes(data))
    frame = next(iter_frames(path)).image
    white = {"top": frame[:10].mean(), "bottom": frame[-10:].mean(), "left": frame[:, :10].mean()}
    assert white[band_at] == pytest.approx(255, abs=3)
    assert frame.shape[:2] == ((64, 96) if band_at == "left" else (96, 64))


def test_disk_full_mid_run_reports_the_first_failed_face_and_resume_loses_nothing(tmp_path, monkeypatch, capsys, clip):
    """A nearly full disk: face files (large) fail from the 5th on while the small resume state still fits. The
    first failed face is the one reported, and the resume point stays before it, so a re-run writes every face."""
    from facelab.io import atomic

    ref = sorted(p.name for p in face_files(extract(clip, tmp_path / "ref", SMALL).output))
    real_fsync, big_writes = atomic.os.fsync, []

    def nearly_full(fd: int) -> None:
        if atomic.os.fstat(fd).st_size > 4096:  # a face, not the resume state
            big_writes.append(fd)
            if len(big_writes) >= 5:
                raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    out = tmp_path / "fs"
    monkeypatch.setattr(atomic.os, "fsync", nearly_full)
    assert cli(["extract", str(clip), "-o", str(out), "--size", "128"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"facelab: error: {out / ref[4]}: out of disk space (partial file removed)"]
    st = json.loads((out / STATE_FILE).read_text())["sources"][str(clip.resolve())]
    assert not st["complete"] and st["next"] <= int(ref[4].split("_")[1])  # before the frame of the failed face
    monkeypatch.setattr(atomic.os, "fsync", real_fsync)
    assert cli(["extract", str(clip), "-o", str(out), "--size", "128"]) == 0
    assert sorted(p.name for p in face_files(out)) == ref


def test_truncated_faststart_video_is_reported_and_never_complete(tmp_path, capsys, clip):
    """Index at the front, data cut at 30 %: the decodable frames are extracted, the shortfall is one line (what
    decoded, of how many, where it stopped), exit 2, and the resume state does not claim completion."""
    cut = cut_faststart(clip, tmp_path / "cut.mp4", 0.3)
    out = tmp_path / "fs"
    for _ in range(2):  # a re-run resumes after the last decoded frame and reports the same
        err = _cli_error(capsys, "extract", str(cut), "-o", str(out), "--size", "128")
        m = re.fullmatch(
            rf"facelab: error: {re.escape(str(cut))}: truncated or damaged: decoded (\d+) of 30 frames "
            rf"\(stopped at (\d+\.\d\d) s\); the faces of those frames are in {re.escape(str(out))}",
            err,
        )
        assert m, err
        decoded = int(m[1])
        assert 0 < decoded < 30 and float(m[2]) == pytest.approx(decoded / 30, abs=0.006)
        st = json.loads((out / STATE_FILE).read_text())["sources"][str(cut.resolve())]
        assert st == {"next": decoded, "complete": False}
        assert 0 < len(face_files(out)) <= decoded


def test_rerun_of_a_finished_extraction_still_exits_0(tmp_path, capsys, hopper):
    img = _write(tmp_path / "grace.png", hopper)
    for _ in range(2):
        assert cli(["extract", str(img), "-o", str(tmp_path / "fs"), "--size", "128"]) == 0
    assert "already extracted" in capsys.readouterr().out  # nothing to do is not a failure


def test_parallel_finders_give_the_serial_faces_in_frame_order(tmp_path, clip):
    """--jobs 2: two finders in threads; the faceset (names, landmarks, resume state) equals one finder's."""
    serial = extract(clip, tmp_path / "one", SMALL)
    parallel = extract(clip, tmp_path / "two", replace(SMALL, jobs=2))
    assert (parallel.frames_read, parallel.faces_written) == (serial.frames_read, serial.faces_written) == (30, 30)
    one, two = face_files(tmp_path / "one"), face_files(tmp_path / "two")
    assert [p.name for p in one] == [p.name for p in two]
    for a, b in zip(one, two):
        np.testing.assert_array_equal(read_meta(a).landmarks, read_meta(b).landmarks)
    assert json.loads((tmp_path / "two" / STATE_FILE).read_text())["sources"]
