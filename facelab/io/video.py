"""Writing results: H.264 video that keeps the source's timing and audio, or a lossless PNG sequence.

``VideoWriter`` encodes RGB frames with libx264 (yuv420p, BT.709-tagged), copies the template video's audio
packet for packet (re-encoding to AAC only when the output container cannot hold the codec), stamps container
metadata (see ``synthetic_tag``) and appears under its final name only once it is complete: it is written as
``<stem>.partial<ext>`` beside the target and renamed on a successful ``close()``.

Odd frame sizes: yuv420p needs even width and height, so an odd-sized frame is padded by replicating its last
row/column; the output is then 1 px taller and/or wider than the frames given (63x65 -> 64x66).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facelab import __version__
from facelab.errors import FacelabError
from facelab.io.atomic import ensure_writable_dir, write_atomic
from facelab.io.media import ffmpeg_reason, open_video

log = logging.getLogger(__name__)

VIDEO_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}

# Of the standard tags only "comment" (and title/artist/album/genre/copyright) survives FFmpeg's mp4, mov and
# matroska muxers alike; mov drops "description" and mp4/mov drop custom keys unless written as QuickTime mdta
# keys, which many tools don't show. So one key carries both a readable sentence and a JSON payload.
SYNTHETIC_TAG_KEY = "comment"
_TAG_MARK = "facelab-tag:"
_TAG_PREFIX = "Synthetic media:"


def synthetic_tag(model_id: str, extra: dict[str, Any] | None = None) -> dict[str, str]:
    """Container metadata declaring that faces in the video were altered by facelab (JSON-able ``extra``)."""
    info = {"synthetic": True, "tool": "facelab", "version": __version__, "model": model_id, **(extra or {})}
    payload = json.dumps(info, sort_keys=True, separators=(",", ":"))  # ASCII: safe in every container
    text = f"{_TAG_PREFIX} face(s) altered by facelab {__version__} (model {model_id}). {_TAG_MARK}{payload}"
    return {SYNTHETIC_TAG_KEY: text}


def read_tag(path: str | Path) -> dict[str, Any] | None:
    """The facelab tag of a video (the JSON written by ``synthetic_tag``), or None when it carries none."""
    with open_video(Path(path)) as c:
        meta = {k.lower(): v for k, v in c.metadata.items()}  # matroska reads keys back upper-case
    text = meta.get(SYNTHETIC_TAG_KEY, "")
    if _TAG_MARK in text:
        with contextlib.suppress(ValueError):
            info = json.loads(text.split(_TAG_MARK, 1)[1])
            if isinstance(info, dict):
                return info
    if text.startswith(_TAG_PREFIX):  # sentence kept but payload mangled by some other tool
        return {"synthetic": True, "text": text}
    return None


def _time_base(rate: Fraction) -> Fraction:
    """A fine time base in which one frame is a whole number of ticks (1/90000 for 24/25/30/50/60 fps)."""
    den = math.lcm(rate.numerator, 90000)
    return Fraction(1, den if den < 2**30 else 90000)


class VideoWriter:
    """H.264 video writer; use as a context manager. See the module docstring for what it guarantees.

    ``write(frame_rgb, pts_seconds)``: give the source frame's timestamp (``Frame.timestamp``) to keep a
    variable-frame-rate source's timing; without it frames are spaced at ``fps`` (default: the template's
    average rate). An exception inside the ``with`` block removes the partial file and propagates unchanged;
    write/close failures (disk full, ...) remove it and raise a one-line ``FacelabError``.
    """

    def __init__(
        self,
        path: str | Path,
        template: str | Path | None,
        *,
        fps: float | Fraction | None = None,
        crf: int = 18,
        preset: str = "veryfast",
        copy_audio: bool = True,
        metadata: dict[str, str] | None = None,
    ) -> None:
        import av

        self.path = Path(path)
        fmt = VIDEO_FORMATS.get(self.path.suffix.lower())
        if fmt is None:
            raise FacelabError(f"{self.path}: unsupported video extension (use {', '.join(VIDEO_FORMATS)})")
        ensure_writable_dir(self.path.parent)  # PyAV only creates the file at the first packet: check now
        self.partial = self.path.with_name(f"{self.path.stem}.partial{self.path.suffix}")
        self.frames_written = 0
        self.size: tuple[int, int] | None = None  # (width, height) as encoded
        self._src = open_video(Path(template)) if template is not None else None
        self._closed = False
        try:
            src_rate = self._src.streams.video[0].average_rate if self._src else None
            rate = Fraction(fps or src_rate or 30).limit_denominator(1001)
            self._tb = _time_base(rate)
            self._ticks = int(1 / (rate * self._tb))  # one frame, in output ticks
            self._last_pts: int | None = None
            self._out = av.open(str(self.partial), "w", format=fmt)
            self._out.metadata.update(metadata or {})
            vs = self._out.add_stream("libx264", rate=rate)
            vs.pix_fmt = "yuv420p"
            vs.options = {"crf": str(crf), "preset": preset}
            vs.codec_context.time_base = vs.time_base = self._tb
            cc = vs.codec_context
            # Tag what we encode (BT.709, limited range): untagged HD is guessed as 709 by players, SD as 601.
            cc.colorspace = cc.color_primaries = cc.color_trc = 1
            cc.color_range = 1
            self._vs = vs
            self._audio = self._add_audio() if copy_audio and self._src else {}
            self._packets = self._audio_packets()
            self._next_audio: Any = None
        except BaseException:
            self.abort()
            raise

    # -- audio ---------------------------------------------------------------------------------------------

    def _add_audio(self) -> dict[int, tuple[Any, bool]]:
        """(output stream, copy?) per template audio stream index: packet copy, or AAC when unsupported."""
        assert self._src is not None
        out: dict[int, tuple[Any, bool]] = {}
        for s in self._src.streams.audio:
            name = s.codec_context.name
            if name in self._out.supported_codecs:
                out[s.index] = (self._out.add_stream_from_template(s), True)
            else:
                log.warning("%s: %s audio cannot go into %s; re-encoding it to AAC", self.path, name, self.path.suffix)
                a = self._out.add_stream("aac", rate=s.codec_context.sample_rate or 48000)
                a.layout = s.codec_context.layout
                out[s.index] = (a, False)
        return out

    def _audio_packets(self) -> Iterator[Any]:
        """Template audio packets in file order, shifted so the template's video start is time 0 (as frames
        from ``iter_frames`` are), each with its output stream set (re-encoded streams yield new packets)."""
        if not self._audio:
            return
        assert self._src is not None
        v = self._src.streams.video[0]
        t0 = (v.start_time or 0) * v.time_base if v.time_base else 0
        ins = [s for s in self._src.streams.audio if s.index in self._audio]
        for pkt in self._src.demux(ins):
            dst, copy = self._audio[pkt.stream.index]
            if copy:
                if pkt.dts is None:  # demuxer's end-of-stream marker: nothing to copy
                    continue
                shift = round(t0 / pkt.time_base)
                pkt.pts = None if pkt.pts is None else pkt.pts - shift
                pkt.dts -= shift
                pkt.stream = dst
                yield pkt
            else:
                for frame in pkt.decode():
                    frame.pts = None  # the encoder's resampler re-chunks and re-times from the first sample
                    yield from dst.encode(frame)
                if pkt.dts is None:
                    yield from dst.encode(None)

    def _pump_audio(self, until: float | None) -> None:
        """Mux template audio up to ``until`` seconds (all when None), so audio and video interleave."""
        while True:
            if self._next_audio is None:
                self._next_audio = next(self._packets, None)
                if self._next_audio is None:
                    return
            pkt = self._next_audio
            t = pkt.dts if pkt.dts is not None else pkt.pts
            if until is not None and t is not None and pkt.time_base and t * pkt.time_base > until:
                return
            self._mux([pkt])
            self._next_audio = None

    # -- video ---------------------------------------------------------------------------------------------

    def _mux(self, packets: Iterable[Any]) -> None:
        self._out.mux(list(packets))

    def write(self, frame_rgb: np.ndarray, pts_seconds: float | None = None) -> None:
        """Encode one RGB uint8 (H, W, 3) frame, at ``pts_seconds`` if given (else one frame after the last)."""
        import av

        img = np.asarray(frame_rgb)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 (H, W, 3) frame, got {img.dtype} {img.shape}")
        h, w = img.shape[:2]
        if h % 2 or w % 2:
            img = np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        size = (img.shape[1], img.shape[0])
        if self.size is None:
            if size != (w, h):
                log.info("%s: %dx%d frames padded to %dx%d (H.264 yuv420p needs even sizes)", self.path, w, h, *size)
            self.size = size
            self._vs.width, self._vs.height = size
        elif size != self.size:
            raise FacelabError(f"{self.path}: frame {self.frames_written} is {w}x{h}, earlier frames were not")
        if pts_seconds is None:
            pts = 0 if self._last_pts is None else self._last_pts + self._ticks
        else:
            pts = round(pts_seconds / self._tb)
            if self._last_pts is not None and pts <= self._last_pts:  # the encoder needs rising pts
                pts = self._last_pts + 1
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        vf = vf.reformat(format="yuv420p", dst_colorspace="ITU709")
        vf.pts, vf.time_base, vf.duration = pts, self._tb, self._ticks
        try:
            self._mux(self._vs.encode(vf))
            self._pump_audio(float(pts * self._tb))
        except (OSError, av.error.FFmpegError) as e:
            self._fail(e)
        self._last_pts = pts
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder, mux the remaining audio, finish the file and give it its final name."""
        import av

        if self._closed:
            return
        if not self.frames_written:
            self.abort()
            raise FacelabError(f"{self.path}: no frames were written; nothing saved")
        try:
            self._mux(self._vs.encode(None))  # flush: the encoder holds the last frames until now
            self._pump_audio(None)
            self._out.close()
            with open(self.partial, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(self.partial, self.path)
        except (OSError, av.error.FFmpegError) as e:
            self._fail(e)
        self._closed = True
        if self._src is not None:
            self._src.close()

    def abort(self) -> None:
        """Stop writing and remove the partial file (the target is left as it was)."""
        self._closed = True
        for c in (getattr(self, "_out", None), self._src):
            if c is not None:
                with contextlib.suppress(Exception):  # a failing trailer write must not mask the cause
                    c.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.partial)

    def _fail(self, e: Exception) -> None:
        self.abort()
        if getattr(e, "errno", None) == errno.ENOSPC:
            raise FacelabError(f"{self.path}: out of disk space; partial output removed") from e
        reason = getattr(e, "strerror", None) or ffmpeg_reason(e)
        raise FacelabError(f"{self.path}: cannot write video ({reason}); partial output removed") from e

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class PngSequenceWriter:
    """Lossless output: ``<folder>/<index:06d>.png`` per frame (each written atomically), and at a successful
    ``close()`` ``frames.json`` with every frame's file and timestamp (its presence marks a complete run).
    Numbered files left from an earlier, longer run are not deleted; ``frames.json`` lists the current ones."""

    def __init__(
        self,
        folder: str | Path,
        template: str | Path | None = None,
        *,
        fps: float | None = None,
        metadata: dict[str, str] | None = None,
        **_video_options: Any,  # crf, preset, copy_audio: meaningless for PNG, accepted for open_writer
    ) -> None:
        from facelab.io.media import probe

        self.path = ensure_writable_dir(folder)
        self.fps = fps or (probe(template).fps if template is not None else None) or 30.0
        self.metadata = dict(metadata or {})
        self.frames: list[dict[str, Any]] = []

    @property
    def frames_written(self) -> int:
        return len(self.frames)

    def write(self, frame_rgb: np.ndarray, pts_seconds: float | None = None) -> None:
        img = np.asarray(frame_rgb)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 (H, W, 3) frame, got {img.dtype} {img.shape}")
        i = len(self.frames)
        name = f"{i:06d}.png"
        ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        if not ok:
            raise FacelabError(f"{self.path / name}: PNG encoding failed")
        write_atomic(self.path / name, buf.tobytes())
        t = pts_seconds if pts_seconds is not None else i / self.fps
        self.frames.append({"file": name, "timestamp": round(float(t), 6)})

    def close(self) -> None:
        info = {"fps": self.fps, "metadata": self.metadata, "frames": self.frames}
        write_atomic(self.path / "frames.json", json.dumps(info, indent=1).encode())

    def __enter__(self) -> PngSequenceWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()


def open_writer(path: str | Path, template: str | Path | None, **kw: Any) -> VideoWriter | PngSequenceWriter:
    """A PNG sequence for a folder (existing folder, trailing slash, or no extension), else a VideoWriter."""
    p = Path(path)
    if str(path).endswith(("/", os.sep)) or p.is_dir() or not p.suffix:
        return PngSequenceWriter(p, template, **kw)
    return VideoWriter(p, template, **kw)
