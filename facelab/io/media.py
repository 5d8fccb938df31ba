"""Reading faces' raw material: videos (PyAV), folders of images, single images, as RGB frames.

Every frame carries its index and timestamp (from the stream's pts, so variable-frame-rate video is timed
correctly) and is rotated upright according to the container's display-matrix rotation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facelab.errors import MediaError

log = logging.getLogger(__name__)

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


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_path(p) and not p.name.startswith("."))


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 image; one-line MediaError if the file is missing, empty or not a decodable image."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise MediaError(f"{path}: cannot read ({e.strerror or e})") from e
    if data.size == 0:
        raise MediaError(f"{path}: empty file")
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
    if path.is_dir():
        return MediaInfo("images", len(list_images(path)))
    if is_image_path(path):
        return MediaInfo("images", 1)
    with open_video(path) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate) if s.average_rate else None
        n = s.frames or (int(round(float(s.duration * s.time_base) * fps)) if s.duration and fps else None)
        return MediaInfo("video", n, fps, s.codec_context.width, s.codec_context.height)


def iter_frames(
    path: str | Path, every: int = 1, start: int = 0, on_error: Callable[[str, MediaError], None] | None = None
) -> Iterator[Frame]:
    """Frames of a video, a folder of images or one image. ``every`` keeps one frame in N; ``start`` skips the
    first frames (or images) without decoding faces from them (resume). An unreadable image in a folder is
    passed to ``on_error`` and skipped (raised if no ``on_error`` is given)."""
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
    yield from _iter_video(path, every, start)


def open_video(path: Path):
    import av

    if path.stat().st_size == 0:
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


def _iter_video(path: Path, every: int, start: int) -> Iterator[Frame]:
    import av

    with open_video(path) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads: decode is not the bottleneck
        tb = stream.time_base
        t0 = stream.start_time or 0
        i = -1
        try:
            for frame in c.decode(stream):
                i += 1
                if i < start or i % every:
                    continue
                img = frame.to_ndarray(format="rgb24")
                k = _quarter_turns(frame.rotation)
                if k:
                    img = np.ascontiguousarray(np.rot90(img, k))
                ts = (
                    float((frame.pts - t0) * tb)
                    if frame.pts is not None and tb is not None
                    else i / float(stream.average_rate or 30)
                )
                yield Frame(img, str(path), f"{path.stem}_{i:06d}", i, i, ts)
        except av.error.FFmpegError as e:
            if i < 0:
                raise MediaError(f"{path}: video stream cannot be decoded ({ffmpeg_reason(e)})") from e
            log.warning("%s: decoding stopped after frame %d (%s); the file looks truncated", path, i, ffmpeg_reason(e))
        if i < 0:
            raise MediaError(f"{path}: video has no decodable frames (truncated or corrupt)")
