"""facelab.io.video: H.264 writer (timing, audio copy, metadata tag, atomicity) and the PNG-sequence writer."""

from __future__ import annotations

import errno
import json
from fractions import Fraction

import cv2
import numpy as np
import pytest

from facelab.demo import write_motion_clip
from facelab.errors import FacelabError
from facelab.io.media import iter_frames
from facelab.io.video import (
    PngSequenceWriter,
    VideoWriter,
    open_writer,
    read_tag,
    synthetic_tag,
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, astronaut):
    """30 frames at 30 fps, 96x96 H.264 + AAC mono."""
    return write_motion_clip(astronaut, tmp_path_factory.mktemp("clip") / "src.mp4", frames=30, fps=30, size=96)


def _reencode(src, dst, **kw):
    with VideoWriter(dst, src, **kw) as w:
        for f in iter_frames(src):
            w.write(f.image, f.timestamp)
    return dst


def _audio_packets(path):
    import av

    with av.open(str(path)) as c:
        if not c.streams.audio:
            return []
        return [bytes(p) for p in c.demux(audio=0) if p.dts is not None]


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if "partial" in p.name or p.suffix in (".mp4", ".mkv"))


def test_reencode_keeps_frames_duration_and_audio_bytes(tmp_path, clip):
    import av

    out = _reencode(clip, tmp_path / "out.mp4")
    with av.open(str(out)) as c, av.open(str(clip)) as s:
        assert sum(1 for _ in c.decode(video=0)) == 30
        assert abs(c.duration - s.duration) / 1e6 <= 1 / 30
        assert c.streams.audio[0].codec_context.name == "aac"
    with av.open(str(out)) as c:
        # interleaved, not all audio at the end: players read it without seeking back and forth
        kinds = "".join(p.stream.type[0] for p in c.demux() if p.dts is not None)
        assert "a" in kinds[: len(kinds) // 2]
    src_audio = _audio_packets(clip)
    assert len(src_audio) > 10 and _audio_packets(out) == src_audio
    assert not (tmp_path / "out.partial.mp4").exists()


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".mov"])
def test_synthetic_tag_round_trips(tmp_path, clip, ext):
    out = _reencode(clip, tmp_path / f"out{ext}", metadata=synthetic_tag("df-256", {"job": "t1"}))
    tag = read_tag(out)
    assert tag is not None and tag["synthetic"] is True and tag["model"] == "df-256" and tag["job"] == "t1"
    assert tag["tool"] == "facelab"


def test_read_tag_absent_on_plain_video(clip):
    assert read_tag(clip) is None


def test_template_without_audio(tmp_path, astronaut):
    src = write_motion_clip(astronaut, tmp_path / "mute.mp4", frames=10, size=64, audio=False)
    out = _reencode(src, tmp_path / "out.mkv")
    assert _audio_packets(out) == []
    assert len(list(iter_frames(out))) == 10


def test_unsupported_audio_codec_is_reencoded_to_aac(tmp_path, caplog):
    import av

    src = tmp_path / "mulaw.mov"  # mov takes pcm_mulaw, mp4 does not
    with av.open(str(src), "w") as c:
        vs = c.add_stream("libx264", rate=10)
        vs.width = vs.height = 32
        vs.pix_fmt = "yuv420p"
        a = c.add_stream("pcm_mulaw", rate=8000)
        a.layout = "mono"
        for i in range(10):
            f = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 20 * i, np.uint8), format="rgb24")
            f.pts = i
            c.mux(vs.encode(f))
        c.mux(vs.encode())
        tone = (8000 * np.sin(np.arange(8000) / 5)).astype(np.int16)[None]
        af = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
        af.sample_rate, af.pts = 8000, 0
        c.mux(a.encode(af))
        c.mux(a.encode())
    out = _reencode(src, tmp_path / "out.mp4")
    assert "re-encoding it to AAC" in caplog.text
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
        assert sum(fr.samples for fr in c.decode(audio=0)) >= 8000


def test_odd_size_is_padded_by_one_pixel(tmp_path):
    frames = [np.random.default_rng(i).integers(0, 255, (65, 63, 3), np.uint8) for i in range(4)]
    with VideoWriter(tmp_path / "odd.mp4", None, fps=24) as w:
        for f in frames:
            w.write(f)
    assert w.size == (64, 66)
    back = list(iter_frames(tmp_path / "odd.mp4"))
    assert len(back) == 4 and back[0].image.shape == (66, 64, 3)


def test_exception_in_block_leaves_nothing(tmp_path, clip):
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(out, clip) as w:
        for f in iter_frames(clip):
            w.write(f.image, f.timestamp)
            if f.position == 5:
                raise RuntimeError("boom")
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("when", ["write", "close"])
def test_disk_full_is_one_line_and_removes_partial(tmp_path, clip, monkeypatch, when):
    real = VideoWriter._mux

    def mux(self, packets):
        # "close": all 30 frames were written; the encoder flush (or the audio tail) hits the full disk
        if (self.frames_written >= 8) if when == "write" else (self.frames_written == 30):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, packets)

    monkeypatch.setattr(VideoWriter, "_mux", mux)
    with pytest.raises(FacelabError, match="out of disk space; partial output removed") as e:
        _reencode(clip, tmp_path / "out.mp4")
    assert "\n" not in str(e.value)
    assert _leftovers(tmp_path) == []


def test_png_sequence_round_trips_pixels(tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (17, 23, 3), np.uint8) for _ in range(3)]
    folder = tmp_path / "seq"
    with open_writer(str(folder) + "/", None, fps=25) as w:
        assert isinstance(w, PngSequenceWriter)
        for i, f in enumerate(frames):
            w.write(f, pts_seconds=0.5 * i)
    back = list(iter_frames(folder))
    assert [b.name for b in back] == ["000000", "000001", "000002"]
    for a, b in zip(frames, back):
        np.testing.assert_array_equal(a, b.image)
    info = json.loads((folder / "frames.json").read_text())
    assert [f["timestamp"] for f in info["frames"]] == [0.0, 0.5, 1.0]


def test_open_writer_picks_by_extension(tmp_path, clip):
    w = open_writer(tmp_path / "x.mkv", clip)
    assert isinstance(w, VideoWriter)
    w.abort()
    assert isinstance(open_writer(tmp_path / "frames", None), PngSequenceWriter)
    with pytest.raises(FacelabError, match="unsupported video extension"):
        open_writer(tmp_path / "x.avi", clip)


def test_variable_frame_rate_timing_is_kept(tmp_path, astronaut):
    import av

    pts_ms = [0, 40, 80, 300, 340, 700]
    src = tmp_path / "vfr.mp4"
    img = cv2.resize(astronaut, (64, 64))
    with av.open(str(src), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width = vs.height = 64
        vs.pix_fmt = "yuv420p"
        vs.codec_context.time_base = vs.time_base = Fraction(1, 1000)
        for p in pts_ms:
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = p, Fraction(1, 1000)
            c.mux(vs.encode(f))
        c.mux(vs.encode())
    for ext in (".mp4", ".mkv"):
        out = _reencode(src, tmp_path / f"out{ext}")
        got = [f.timestamp for f in iter_frames(out)]
        assert np.allclose(got, np.array(pts_ms) / 1000, atol=1e-3), (ext, got)


def test_unwritable_output_folder(tmp_path, clip):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FacelabError, match="not writable") as e:
        VideoWriter(blocker / "sub" / "out.mp4", clip)
    assert str(blocker) in str(e.value)
    with pytest.raises(FacelabError):
        PngSequenceWriter(blocker / "seq")
