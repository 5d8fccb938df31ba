"""Grid thumbnails, cached on disk under ``WORKSPACE/.facelab-studio/thumbs/``.

A thumbnail is named by a hash of the face's path in the workspace, its size and mtime: an edited face gets a new
one, and an old one is never served for it. Only the cache is written (never a face); it can be deleted any time.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from facelab.io.media import cut_short
from facelab.studio.security import StudioError

THUMB_SIDE = 128  # px, the grid's tile
THUMB_QUALITY = 85


def thumb_path(cache: Path, rel: str, size: int, mtime_ns: int) -> Path:
    """Where the thumbnail of face ``rel`` (its path in the workspace) at this (size, mtime) lives."""
    h = hashlib.sha1(f"{rel}\0{size}\0{mtime_ns}\0{THUMB_SIDE}".encode()).hexdigest()
    return cache / h[:2] / f"{h}.jpg"


def cached_thumbnail(cache: Path, face: Path, rel: str) -> bytes | None:
    """The thumbnail of ``face`` if the cache has it (cheap: two stats and a small read), else None."""
    try:
        st = face.stat()
        data = thumb_path(cache, rel, st.st_size, st.st_mtime_ns).read_bytes()
    except OSError:
        return None
    return data or None  # an empty file: a write cut by a crash (no fsync), made again


def thumbnail(cache: Path, face: Path, rel: str) -> bytes:
    """The thumbnail of ``face``, from the cache or made now and cached (served uncached where the cache cannot be
    written); StudioError 422 when its pixels do not decode."""
    try:
        st = face.stat()
    except OSError as e:
        raise StudioError(f"{rel}: cannot read ({e.strerror or e})", 404) from e
    out = thumb_path(cache, rel, st.st_size, st.st_mtime_ns)
    with contextlib.suppress(OSError):
        data = out.read_bytes()
        if data:
            return data
    data = make_thumbnail(face, rel)
    _write_cache(out, data)
    return data


def make_thumbnail(face: Path, rel: str) -> bytes:
    """JPEG bytes of ``face`` fitted in THUMB_SIDE px. The JPEG decoder is asked for a reduced scale first
    (``draft``), so a 512 px face costs little more than a 128 px one."""
    try:
        data = face.read_bytes()
    except OSError as e:
        raise StudioError(f"{rel}: cannot read ({e.strerror or e})", 404) from e
    why = cut_short(data[:8], data[-16:])
    if why:
        raise StudioError(f"{rel}: {why}", 422)
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.draft("RGB", (THUMB_SIDE, THUMB_SIDE))
            rgb = im.convert("RGB")
        rgb.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
        buf = io.BytesIO()
        rgb.save(buf, "JPEG", quality=THUMB_QUALITY)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
        raise StudioError(f"{rel}: face image data is corrupt ({e})", 422) from e
    return buf.getvalue()


def _write_cache(path: Path, data: bytes) -> bool:
    """Temp file + rename, without fsync: a cache entry lost in a crash is only made again (an empty one too).
    False where the cache cannot be written (a read-only workspace): the thumbnail is then served uncached."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".thumb.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return True
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return False
