"""Reading faces' raw material: videos (PyAV), folders of images, single images, as RGB frames.

Every frame carries its index and timestamp (from the stream's pts, so variable-frame-rate video is timed
correctly) and is rotated upright according to the container's display-matrix rotation.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facelab.errors import MediaError

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pnm"}


@dataclass
class Frame:
    image: np.ndarray  # RGB uint8 (H, W, 3), upright
    source: str  # the file this frame came from
    name: str  # stable stem for output files: "<video>_<index:06d>" or the image's stem
    position: int = 0  # place in the input sequence (frame number, or image number in a folder)
    index: int | None = None  # frame number in the video (None for images)
    timestamp: float | None = None  # seconds (None for images)


@dataclass
class MediaInfo:
    kind: str  # "video" | "images"
    frames: int | None  # count if known
    fps: float | None = None
    width: int | None = None
    height: int | None = None


@dataclass
class DecodeCheck:
    """How far a video decoded against what its container declares, filled in by ``iter_frames`` as it goes.

    Decoding can end early without an error (FFmpeg's threaded decoder just stops where a file's data ends, while
    an index at the front still declares every frame), so the count is compared after the last frame."""

    declared: int | None = None  # frames the container declares (None: unknown)
    decoded: int = 0  # frames decoded, including ones skipped by ``every`` / ``start``
    stopped_at: float | None = None  # where the decoded part ends: last frame's timestamp + one frame, s
    reason: str | None = None  # the decoder's error, when it raised one

    @property
    def short(self) -> bool:
        """Fewer frames than declared: beyond a small tolerance (container counts can be off by a few), or any
        shortfall at all when the decoder raised an error."""
        if self.declared is None:
            return self.reason is not None
        missing = self.declared - self.decoded
        return missing > max(2, self.declared // 50) or (self.reason is not None and missing > 0)

    def message(self, path: str | Path) -> str:
        """One line: ``clip.mp4: truncated or damaged: decoded 71 of 282 frames (stopped at 2.37 s)``."""
        of = f" of {self.declared}" if self.declared is not None else ""
        at = f" (stopped at {self.stopped_at:.2f} s)" if self.stopped_at is not None else ""
        why = f": {self.reason}" if self.reason and self.declared is None else ""
        return f"{path}: truncated or damaged: decoded {self.decoded}{of} frames{at}{why}"


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def list_images(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_file() and is_image_path(p) and not p.name.startswith("."))
    except OSError as e:  # a folder without read permission
        raise MediaError(f"{folder}: cannot read ({e.strerror or e})") from e


def natural_key(name: str) -> tuple[tuple[str | int, ...], str]:
    """Sort key that orders numbers by value: frame_2.png before frame_10.png (digit runs compare as integers)."""
    parts = re.split(r"(\d+)", name)  # str, digits, str, ...: same types at the same positions for every name
    return tuple(int(t) if i % 2 else t.lower() for i, t in enumerate(parts)), name


@dataclass
class FrameSequence:
    """A folder of still frames read as one clip: images in natural name order, all of one size."""

    folder: Path
    paths: list[Path]
    width: int
    height: int

    def __len__(self) -> int:
        return len(self.paths)


def frame_sequence(folder: str | Path) -> FrameSequence:
    """The images of ``folder`` as a frame sequence (PNG/JPG/... sorted naturally by name). Reads only headers, so
    a bad folder fails before any work: one-line MediaError naming the first unreadable or differently sized
    file. (A file whose header is fine but whose data is corrupt is named when ``iter_sequence`` reaches it.)"""
    folder = Path(folder)
    if not folder.is_dir():
        raise MediaError(f"{folder}: no such folder")
    paths = sorted(list_images(folder), key=lambda p: natural_key(p.name))
    if not paths:
        raise MediaError(f"{folder}: folder holds no images ({', '.join(sorted(IMAGE_EXTS))})")
    size: tuple[int, int] | None = None
    for p in paths:
        got = _image_size(p)
        if size is None:
            size = got
        elif got != size:
            raise MediaError(
                f"{p}: frame is {got[0]}x{got[1]}, the frames before it in {folder.name} are {size[0]}x{size[1]} "
                "(a frame sequence needs one size)"
            )
    assert size is not None
    return FrameSequence(folder, paths, *size)


def iter_sequence(seq: FrameSequence, fps: float, only: set[int] | None = None) -> Iterator[Frame]:
    """Frames of a frame sequence with video-like numbering: ``index`` = ``position`` = place in the sequence and
    ``timestamp`` = index / ``fps`` (so temporal smoothing and writers treat it as a clip). ``only``: just these
    indices (the others are not decoded)."""
    for i, p in enumerate(seq.paths):
        if only is not None and i not in only:
            continue
        img = read_image(p)
        if img.shape[1] != seq.width or img.shape[0] != seq.height:  # header and data disagree (rare)
            raise MediaError(f"{p}: frame is {img.shape[1]}x{img.shape[0]}, expected {seq.width}x{seq.height}")
        yield Frame(img, str(p), p.stem, i, i, i / fps)


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header (Pillow, lazy); a full decode only for formats Pillow lacks."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError, ValueError):
        img = read_image(path)  # MediaError naming the file if OpenCV cannot read it either
        return img.shape[1], img.shape[0]


def cut_short(head: bytes, tail: bytes) -> str | None:
    """Why a JPEG or PNG looks cut short (a copy or download that stopped part-way), judged from its first 8 and
    last 16 bytes: every whole one ends with its end marker (JPEG EOI ``FF D9``, PNG ``IEND`` chunk), zero padding
    aside. None when it looks whole, or is neither format. Strict: for files facelab (or DFL) wrote itself; a
    camera's JPEG may carry data after its end marker."""
    tail = tail.rstrip(b"\x00")
    if head.startswith(b"\xff\xd8") and not tail.endswith(b"\xff\xd9"):
        return "cut short (the JPEG has no end marker)"
    if head.startswith(PNG_SIGNATURE) and not tail.endswith(b"IEND\xaeB`\x82"):
        return "cut short (the PNG has no end chunk)"
    if not head:
        return "empty file"
    return None


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 image; one-line MediaError if the file is missing, empty or not a decodable image."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise MediaError(f"{path}: cannot read ({e.strerror or e})") from e
    if data.size == 0:
        raise MediaError(f"{path}: empty file")
    if data[:8].tobytes() == PNG_SIGNATURE and b"IEND" not in data.tobytes():  # libpng would print to stderr
        raise MediaError(f"{path}: not a readable image (cut short: the PNG has no end chunk)")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise MediaError(f"{path}: not a readable image (corrupt or unsupported format)")
    if img.dtype != np.uint8:
        img = (img / (256 if img.dtype == np.uint16 else img.max() or 1)).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def probe(path: str | Path) -> MediaInfo:
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: no such file or folder")
    if path.is_dir():
        return MediaInfo("images", len(list_images(path)))
    if is_image_path(path):
        return MediaInfo("images", 1)
    with open_video(path) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate) if s.average_rate else None
        return MediaInfo("video", _declared_frames(s), fps, s.codec_context.width, s.codec_context.height)


def _declared_frames(stream: Any) -> int | None:  # a PyAV video stream (av is imported lazily)
    """Frames the container declares: its frame count, else duration x average rate (None if neither)."""
    fps = float(stream.average_rate) if stream.average_rate else None
    if stream.frames:
        return stream.frames
    return int(round(float(stream.duration * stream.time_base) * fps)) if stream.duration and fps else None


def iter_frames(
    path: str | Path,
    every: int = 1,
    start: int = 0,
    on_error: Callable[[str, MediaError], None] | None = None,
    check: DecodeCheck | None = None,
) -> Iterator[Frame]:
    """Frames of a video, a folder of images or one image. ``every`` keeps one frame in N; ``start`` skips the
    first frames (or images) without decoding faces from them (resume). An unreadable image in a folder is
    passed to ``on_error`` and skipped (raised if no ``on_error`` is given). A video that decodes to fewer frames
    than it declares (truncated or damaged) raises a one-line MediaError after its last decodable frame, unless
    ``check`` is given: it is then filled in for the caller to report after finishing its work."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: no such file or folder")
    if path.is_dir():
        images = list_images(path)
        if not images:
            raise MediaError(f"{path}: folder holds no images ({', '.join(sorted(IMAGE_EXTS))})")
        for i, p in enumerate(images):
            if i >= start and i % every == 0:
                try:
                    img = read_image(p)
                except MediaError as e:
                    if on_error is None:
                        raise
                    on_error(str(p), e)
                    continue
                yield Frame(img, str(p), p.stem, i)
        return
    if is_image_path(path):
        yield Frame(read_image(path), str(path), path.stem)
        return
    own = check is None
    check = check if check is not None else DecodeCheck()
    yield from _iter_video(path, every, start, check)
    if own and check.short:
        raise MediaError(check.message(path))


def open_video(path: Path):
    import av

    try:
        size = path.stat().st_size
    except FileNotFoundError as e:
        raise MediaError(f"{path}: no such file") from e
    except OSError as e:
        raise MediaError(f"{path}: cannot read ({e.strerror or e})") from e
    if size == 0:
        raise MediaError(f"{path}: empty file")
    try:
        c = av.open(str(path))
    except av.error.FFmpegError as e:
        raise MediaError(f"{path}: not a video or image facelab can read ({ffmpeg_reason(e)})") from e
    if not c.streams.video:
        c.close()
        raise MediaError(f"{path}: has no video stream")
    return c


def ffmpeg_reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e).split(":")[0]


def _quarter_turns(rotation: float | None) -> int:
    """Counter-clockwise quarter turns that show a frame upright, from the display matrix's rotation (degrees,
    counter-clockwise; phones write -90 for portrait video). Garbage matrices give no rotation."""
    if rotation is None or not -360 <= rotation <= 360:
        return 0
    return int(round(rotation / 90.0)) % 4


def _iter_video(path: Path, every: int, start: int, check: DecodeCheck) -> Iterator[Frame]:
    import av

    with open_video(path) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads: decode is not the bottleneck
        check.declared = _declared_frames(stream)
        tb = stream.time_base
        t0 = stream.start_time or 0
        step = 1 / float(stream.average_rate) if stream.average_rate else 0.0  # one frame, s
        i = -1
        try:
            for frame in c.decode(stream):
                i += 1
                ts = (
                    float((frame.pts - t0) * tb)
                    if frame.pts is not None and tb is not None
                    else i / float(stream.average_rate or 30)
                )
                check.decoded, check.stopped_at = i + 1, ts + step  # where the decoded part of the video ends
                if i < start or i % every:
                    continue
                img = frame.to_ndarray(format="rgb24")
                k = _quarter_turns(frame.rotation)
                if k:
                    img = np.ascontiguousarray(np.rot90(img, k))
                yield Frame(img, str(path), f"{path.stem}_{i:06d}", i, i, ts)
        except av.error.FFmpegError as e:
            if i < 0:
                raise MediaError(f"{path}: video stream cannot be decoded ({ffmpeg_reason(e)})") from e
            check.reason = ffmpeg_reason(e)  # the frames before it were yielded; the caller reports the rest
        if i < 0:
            raise MediaError(f"{path}: video has no decodable frames (truncated or corrupt)")
        if check.reason and not check.short:  # every declared frame decoded: an error in trailing data only
            log.warning("%s: decoding ended with an error after the last frame (%s)", path, check.reason)
