"""Per-face metadata (``FaceMeta``) and its container inside the face's own JPEG or PNG file.

Format (schema version 1), chosen so a 20-line reader in any language can get it back:

* The metadata is one UTF-8 JSON object (``FaceMeta.to_dict``), never pickle.
* JPEG: one or more APP11 segments (marker ``FF EB``) placed right after SOI, each holding
  ``b"facelab\\0" + seq(1 byte) + count(1 byte) + chunk``; the JSON is the chunks joined in ``seq`` order.
  Several segments lift DFL's 64 KB limit (dense meshes and masks fit).
* PNG: one ``tEXt`` chunk with keyword ``facelab`` whose text is the JSON (ASCII-only, escaped).
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import zlib
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import cv2
import numpy as np

from facelab.errors import FacesetError

SCHEMA_VERSION = 1
JPEG_APP11 = 0xFFEB
MAGIC = b"facelab\x00"
_CHUNK = 65533 - len(MAGIC) - 2  # JPEG segment length field counts itself (2 bytes) and is 16-bit


@dataclass
class FaceMeta:
    """Everything known about one aligned face; the single source of truth every stage reads and writes.

    Coordinates are pixels, x right, y down. ``transform`` maps source-frame pixels to aligned pixels
    (``cv2.warpAffine(frame, transform, (size, size))``); ``inverse`` maps back.
    """

    face_type: str
    size: int
    landmarks: np.ndarray  # (68, 2) aligned px
    source_landmarks: np.ndarray  # (68, 2) source px
    transform: np.ndarray  # (2, 3) source -> aligned
    inverse: np.ndarray  # (2, 3) aligned -> source
    source_file: str
    source_size: tuple[int, int]  # (width, height) of the source frame
    source_rect: tuple[float, float, float, float]  # detector box x0, y0, x1, y1 in source px
    face_index: int = 0  # 0 = largest face in the frame
    frame_index: int | None = None  # None for still images
    timestamp: float | None = None  # seconds, from the stream's pts
    detector: str = ""
    detector_score: float = 0.0
    landmarker: str = ""
    yaw: float = 0.0  # degrees, + = face turned to the image's right
    pitch: float = 0.0  # degrees, + = looking up
    roll: float = 0.0  # degrees, + = clockwise in the image
    blur: float = 0.0  # variance of the Laplacian inside the face hull at 256 px; higher = sharper
    mesh: np.ndarray | None = None  # (N, 3) dense mesh in source px (FaceMesh: 478 incl. iris), if any
    masks: list[dict[str, Any]] = field(default_factory=list)  # [{"type": "include"|"exclude", "points": [[x,y],..]}]
    synthetic: bool = False
    xseg_mask: str | None = None  # base64 PNG, 8-bit gray, <= 256 px, the whole aligned image ('facelab mask apply')
    extra: dict[str, Any] = field(default_factory=dict)
    version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, np.ndarray):
                d[k] = np.round(v.astype(np.float64), 3).tolist()
        d["source_size"] = list(self.source_size)
        d["source_rect"] = [round(float(v), 2) for v in self.source_rect]
        for k in ("yaw", "pitch", "roll", "blur", "detector_score"):
            d[k] = round(float(d[k]), 4)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FaceMeta:
        version = d.get("version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise FacesetError(
                f"metadata schema version {version!r} is not supported (this facelab reads <= {SCHEMA_VERSION})"
            )
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        try:
            for k, shape in (
                ("landmarks", (68, 2)),
                ("source_landmarks", (68, 2)),
                ("transform", (2, 3)),
                ("inverse", (2, 3)),
            ):
                kw[k] = np.asarray(kw[k], dtype=np.float64).reshape(shape)
            if kw.get("mesh") is not None:
                kw["mesh"] = np.asarray(kw["mesh"], dtype=np.float64)
            kw["source_size"] = tuple(int(v) for v in kw["source_size"])
            kw["source_rect"] = tuple(float(v) for v in kw["source_rect"])
            return cls(**kw)
        except (KeyError, TypeError, ValueError) as e:
            raise FacesetError(f"metadata is malformed ({e})") from e

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=True).encode("ascii")


XSEG_MAX_SIDE = 256


def encode_xseg_mask(mask: np.ndarray) -> str:
    """``FaceMeta.xseg_mask`` for a mask covering the whole aligned image (float in [0, 1], uint8 0..255 or bool):
    an 8-bit gray PNG of at most 256 px a side (area-averaged down), base64 text. A binary mask (bool, as ``mask
    apply`` stores) that needs no resize is deflated run-length only: 5x faster than level 9, a few % larger."""
    m = np.asarray(mask)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"a face mask is a square (S, S) array, got {m.shape}")
    binary = m.dtype == bool and m.shape[0] <= XSEG_MAX_SIDE
    if m.dtype == bool:
        m = m.view(np.uint8) * np.uint8(255)
    elif m.dtype != np.uint8:
        m = np.round(np.clip(m.astype(np.float32), 0, 1) * 255).astype(np.uint8)
    if m.shape[0] > XSEG_MAX_SIDE:
        m = cv2.resize(m, (XSEG_MAX_SIDE, XSEG_MAX_SIDE), interpolation=cv2.INTER_AREA)
    params = [cv2.IMWRITE_PNG_COMPRESSION, 9]
    if binary:
        params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    ok, buf = cv2.imencode(".png", m, params)
    if not ok:
        raise FacesetError("could not encode the face mask as PNG")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def decode_xseg_mask(text: str, side: int | None = None) -> np.ndarray:
    """The uint8 (S, S) mask of ``FaceMeta.xseg_mask`` (0..255), resized to ``side`` (linear) if given."""
    try:
        data = np.frombuffer(base64.b64decode(text, validate=True), np.uint8)
    except (binascii.Error, ValueError, TypeError) as e:
        raise FacesetError(f"xseg_mask is not base64 ({e})") from e
    m = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if len(data) else None
    if m is None or m.shape[0] != m.shape[1]:
        raise FacesetError("xseg_mask is not a square gray PNG")
    if side is not None and m.shape[0] != side:
        m = cv2.resize(m, (side, side), interpolation=cv2.INTER_LINEAR)
    return m


# --- container -------------------------------------------------------------------------------------------------


def embed(image_bytes: bytes, meta: FaceMeta) -> bytes:
    """Return the encoded JPEG or PNG ``image_bytes`` with ``meta`` embedded (any old facelab metadata dropped)."""
    payload = meta.to_json()
    if image_bytes[:2] == b"\xff\xd8":
        return _jpeg_embed(image_bytes, payload)
    if image_bytes[:8] == b"\x89PNG\r\n\x1a\n":
        return _png_embed(image_bytes, payload)
    raise FacesetError("can embed metadata only in JPEG or PNG data")


def extract_json(data: bytes) -> dict[str, Any] | None:
    """The metadata dict stored in JPEG/PNG ``data``, or None if the file carries none."""
    if data[:2] == b"\xff\xd8":
        raw = _jpeg_payload(data)
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        raw = _png_payload(data)
    else:
        raise FacesetError("not a JPEG or PNG file")
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError as e:
        raise FacesetError(f"embedded metadata is not valid JSON ({e})") from e


def read_meta_bytes(data: bytes) -> FaceMeta | None:
    d = extract_json(data)
    return None if d is None else FaceMeta.from_dict(d)


def _jpeg_segments(data: bytes):
    """Yield (marker, start, end) of each marker segment before the scan data."""
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise FacesetError("JPEG marker structure is corrupt")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:
            yield 0xFF00 | marker, i, i + 2
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        yield 0xFF00 | marker, i, i + 2 + length
        if marker == 0xDA:  # start of scan: metadata never follows
            return
        i += 2 + length


def _jpeg_payload(data: bytes) -> bytes | None:
    chunks: dict[int, bytes] = {}
    count = 0
    for marker, s, e in _jpeg_segments(data):
        body = data[s + 4 : e]
        if marker == JPEG_APP11 and body.startswith(MAGIC):
            seq, count = body[len(MAGIC)], body[len(MAGIC) + 1]
            chunks[seq] = body[len(MAGIC) + 2 :]
    if not chunks:
        return None
    if sorted(chunks) != list(range(count)):
        raise FacesetError(f"embedded metadata is truncated ({len(chunks)} of {count} segments)")
    return b"".join(chunks[i] for i in range(count))


def _jpeg_embed(data: bytes, payload: bytes) -> bytes:
    head: list[bytes] = []  # segments that must stay before ours (JFIF APP0, EXIF APP1)
    rest: list[bytes] = []
    for marker, s, e in _jpeg_segments(data):
        if marker == JPEG_APP11 and data[s + 4 : e].startswith(MAGIC):
            continue  # old facelab metadata is replaced
        if marker == 0xFFDA:
            rest.append(data[s:])
            break
        (head if marker in (0xFFE0, 0xFFE1) and not rest else rest).append(data[s:e])
    parts = [payload[i : i + _CHUNK] for i in range(0, len(payload), _CHUNK)] or [b""]
    if len(parts) > 255:
        raise FacesetError("metadata too large for the JPEG container")
    segs = []
    for seq, part in enumerate(parts):
        body = MAGIC + bytes([seq, len(parts)]) + part
        segs.append(struct.pack(">HH", JPEG_APP11, len(body) + 2) + body)
    return b"\xff\xd8" + b"".join(head) + b"".join(segs) + b"".join(rest)


def _png_chunks(data: bytes):
    i = 8
    while i + 8 <= len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        ctype = data[i + 4 : i + 8]
        yield ctype, i, i + 12 + length
        if ctype == b"IEND":
            return
        i += 12 + length


def _png_payload(data: bytes) -> bytes | None:
    for ctype, s, e in _png_chunks(data):
        if ctype == b"tEXt":
            body = data[s + 8 : e - 4]
            if body.startswith(b"facelab\x00"):
                return body[len(b"facelab\x00") :]
    return None


def _png_embed(data: bytes, payload: bytes) -> bytes:
    body = b"tEXt" + b"facelab\x00" + payload
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    out = [data[:8]]
    for ctype, s, e in _png_chunks(data):
        if ctype == b"tEXt" and data[s + 8 : s + 16] == b"facelab\x00":
            continue
        if ctype == b"IEND":
            out.append(chunk)
        out.append(data[s:e])
    return b"".join(out)
