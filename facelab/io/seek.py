"""Random access to the frames of a video or a folder of frames, numbered as ``iter_frames`` / ``iter_sequence``
number them and decoded to the same pixels (the studio's merge tuner scrubs with it).

A video's packets are listed once (demuxing only, no decoding): frame ``i`` is the packet with the i-th smallest
timestamp, and decoding starts at the last keyframe at or before it. Decoded frames stay in a small cache, and
asking for the next frames continues the running decode instead of seeking again.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from facelab.errors import MediaError
from facelab.io.media import _quarter_turns, ffmpeg_reason, frame_sequence, open_video, read_image

READ_AHEAD = 90  # frames: asking this far past the running decode continues it rather than seeking


class FrameReader:
    """``reader[i]``: frame ``i`` (uint8 RGB) of ``path``, a video or a folder of frames; ``len(reader)`` frames."""

    def __init__(self, path: str | Path, cache: int = 16) -> None:
        self.path = Path(path)
        self.cache_size = cache
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._decoder: Iterator[tuple[int, np.ndarray]] | None = None
        self._next = 0  # the index the running decode yields next
        self._container: Any = None
        if self.path.is_dir():
            self._paths = frame_sequence(self.path).paths
            self._pts: list[int] = []
            self._keys: list[int] = []
            return
        self._paths = []
        c = open_video(self.path)
        try:
            s = c.streams.video[0]
            pts, keys = [], []
            for p in c.demux(s):
                if p.pts is None or not p.size:
                    continue
                pts.append(p.pts)
                if p.is_keyframe:
                    keys.append(p.pts)
        except Exception as e:  # noqa: BLE001 - PyAV's errors: a damaged container
            raise MediaError(f"{self.path}: cannot list the video's frames ({ffmpeg_reason(e)})") from e
        finally:
            c.close()
        if not pts:
            raise MediaError(f"{self.path}: video has no frames with timestamps")
        self._pts = sorted(pts)
        self._index = {p: i for i, p in enumerate(self._pts)}
        self._keys = sorted({self._index[k] for k in keys}) or [0]

    def __len__(self) -> int:
        return len(self._paths) if self._paths else len(self._pts)

    @property
    def names(self) -> list[str] | None:
        """A frame folder's file names in frame order; None for a video."""
        return [p.name for p in self._paths] if self._paths else None

    def __getitem__(self, i: int) -> np.ndarray:
        if not 0 <= i < len(self):
            raise MediaError(f"{self.path}: no frame {i} (it has {len(self)} frames, 0..{len(self) - 1})")
        with self._lock:
            hit = self._cache.get(i)
            if hit is not None:
                self._cache.move_to_end(i)
                return hit
            img = read_image(self._paths[i]) if self._paths else self._decode(i)
            self._keep(i, img)
            return img

    def close(self) -> None:
        with self._lock:
            self._decoder = None
            if self._container is not None:
                self._container.close()
                self._container = None

    def _keep(self, i: int, img: np.ndarray) -> None:
        self._cache[i] = img
        self._cache.move_to_end(i)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _decode(self, i: int) -> np.ndarray:
        if self._decoder is None or not self._next <= i <= self._next + READ_AHEAD:
            self._seek(i)
        assert self._decoder is not None
        for k, img in self._decoder:
            self._next = k + 1
            if k == i:
                return img
            if k > i:  # the seek landed past it (a stream whose keyframes are not where they say): from the start
                break
        self._seek(i, from_start=True)
        for k, img in self._decoder:
            self._next = k + 1
            if k == i:
                return img
        raise MediaError(f"{self.path}: frame {i} could not be decoded")

    def _seek(self, i: int, from_start: bool = False) -> None:
        if self._container is not None:
            self._container.close()
        self._container = c = open_video(self.path)
        s = c.streams.video[0]
        key = 0 if from_start else self._keys[bisect.bisect_right(self._keys, i) - 1]
        if key > 0:
            c.seek(self._pts[key], stream=s, backward=True, any_frame=False)
        self._decoder = self._frames(c, s)

    def _frames(self, c: Any, s: Any) -> Iterator[tuple[int, np.ndarray]]:
        try:
            for frame in c.decode(s):
                k = self._index.get(frame.pts) if frame.pts is not None else None
                if k is None:
                    continue
                img = frame.to_ndarray(format="rgb24")
                turns = _quarter_turns(frame.rotation)
                if turns:
                    img = np.ascontiguousarray(np.rot90(img, turns))
                yield k, img
        except Exception as e:  # noqa: BLE001 - PyAV's errors: damaged data
            raise MediaError(f"{self.path}: video stream cannot be decoded ({ffmpeg_reason(e)})") from e
