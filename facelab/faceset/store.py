"""Reading and writing faceset files: one image per face, metadata inside (see ``faceset.meta``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facelab.errors import FacesetError, MediaError
from facelab.faceset.meta import FaceMeta, embed, read_meta_bytes
from facelab.io.atomic import write_atomic

FACE_EXTS = (".jpg", ".jpeg", ".png")


def encode_face(image: np.ndarray, meta: FaceMeta, fmt: str = "jpg", quality: int = 95) -> bytes:
    """Encoded JPEG/PNG bytes of an RGB face with ``meta`` embedded."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if fmt in ("jpg", "jpeg"):
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    elif fmt == "png":
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    else:
        raise ValueError(f"unknown face image format {fmt!r} (jpg or png)")
    if not ok:
        raise FacesetError(f"could not encode face as {fmt}")
    return embed(buf.tobytes(), meta)


def write_face(path: str | Path, image: np.ndarray, meta: FaceMeta, quality: int = 95) -> None:
    path = Path(path)
    write_atomic(path, encode_face(image, meta, path.suffix.lower().lstrip("."), quality))


def with_meta(path: str | Path, data: bytes, **changes: Any) -> bytes:
    """The bytes ``data`` of the face file ``path`` with fields of its metadata replaced (``xseg_mask=...``,
    ``masks=...``): metadata parsed from the file itself (not the index), only its segments (JPEG APP11, PNG tEXt)
    rewritten, the image data kept byte for byte (``embed``)."""
    meta = read_meta_bytes(data)
    if meta is None:
        raise FacesetError(f"{path}: not a facelab face (no embedded metadata)")
    return embed(data, dataclasses.replace(meta, **changes))


def update_meta(path: str | Path, **changes: Any) -> None:
    """Replace fields of the metadata of face file ``path`` (``with_meta``), written atomically; the pixels are
    never re-encoded."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FacesetError(f"{path}: cannot read ({e.strerror or e})") from e
    write_atomic(path, with_meta(path, data, **changes))


def read_meta(path: str | Path) -> FaceMeta:
    """The metadata of one face file; FacesetError naming the file if it has none or it is unreadable."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FacesetError(f"{path}: cannot read ({e.strerror or e})") from e
    try:
        meta = read_meta_bytes(data)
    except FacesetError as e:
        raise FacesetError(f"{path}: {e}") from e
    if meta is None:
        raise FacesetError(f"{path}: not a facelab face (no embedded metadata; DFL faces: 'facelab faceset import')")
    return meta


def read_face(path: str | Path) -> tuple[np.ndarray, FaceMeta]:
    """RGB image and metadata of one face file."""
    path = Path(path)
    meta = read_meta(path)
    img = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise MediaError(f"{path}: face image data is corrupt")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), meta


def face_files(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FacesetError(f"{folder}: is a file, not a faceset folder")
    if not folder.is_dir():
        raise FacesetError(f"{folder}: no such faceset folder")
    try:
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in FACE_EXTS and not p.name.startswith("."))
    except OSError as e:  # a folder without read permission
        raise FacesetError(f"{folder}: cannot read ({e.strerror or e})") from e


def iter_faceset(folder: str | Path) -> Iterator[tuple[Path, FaceMeta]]:
    """(path, meta) of every face in a faceset folder, in name order. Files without facelab metadata raise."""
    for p in face_files(folder):
        yield p, read_meta(p)
