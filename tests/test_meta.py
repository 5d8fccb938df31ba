"""Faceset metadata: round trips through JPEG and PNG, multi-segment payloads, and the README's reader."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from facelab.errors import FacesetError
from facelab.faceset.meta import FaceMeta, embed, extract_json, read_meta_bytes
from facelab.faceset.store import encode_face, read_face, read_meta, write_face

README = Path(__file__).resolve().parents[1] / "README.md"


def _meta(mesh: bool = False) -> FaceMeta:
    rng = np.random.default_rng(0)
    t = np.array([[0.5, 0.1, 3.0], [-0.1, 0.5, 4.0]])
    return FaceMeta(
        face_type="whole_face",
        size=64,
        landmarks=rng.uniform(0, 64, (68, 2)),
        source_landmarks=rng.uniform(0, 640, (68, 2)),
        transform=t,
        inverse=np.linalg.inv(np.vstack([t, [0, 0, 1]]))[:2],
        source_file="clip.mp4",
        source_size=(640, 480),
        source_rect=(10, 20, 110, 140),
        face_index=1,
        frame_index=7,
        timestamp=0.2336,
        detector="mediapipe",
        detector_score=0.93,
        landmarker="dlib68+refine",
        yaw=12.5,
        pitch=-3.25,
        roll=1.0,
        blur=321.5,
        mesh=rng.uniform(0, 640, (478, 3)) if mesh else None,
        masks=[{"type": "include", "points": [[1, 2], [3, 4], [5, 1]]}],
    )


def _image() -> np.ndarray:
    return (np.random.default_rng(1).uniform(0, 255, (64, 64, 3))).astype(np.uint8)


@pytest.mark.parametrize("fmt", ["jpg", "png"])
def test_round_trip(tmp_path, fmt):
    meta = _meta(mesh=True)
    path = tmp_path / f"face.{fmt}"
    write_face(path, _image(), meta)
    img, back = read_face(path)
    assert img.shape == (64, 64, 3)
    for k in ("landmarks", "source_landmarks", "transform", "inverse", "mesh"):
        np.testing.assert_allclose(getattr(back, k), getattr(meta, k), atol=5e-4)
    for k in ("face_type", "size", "source_file", "source_size", "face_index", "frame_index", "masks", "landmarker"):
        assert getattr(back, k) == getattr(meta, k)
    assert back.timestamp == pytest.approx(meta.timestamp)
    assert back.yaw == pytest.approx(12.5) and back.blur == pytest.approx(321.5)
    if fmt == "png":  # lossless: pixels exact
        np.testing.assert_array_equal(img, _image())


def test_jpeg_payload_over_64k_uses_several_segments():
    meta = _meta(mesh=True)
    meta.extra["big"] = "x" * 200_000
    data = encode_face(_image(), meta)
    assert data.count(b"facelab\x00") >= 4
    assert read_meta_bytes(data).extra["big"] == meta.extra["big"]
    # still a valid JPEG for every decoder
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (64, 64, 3)


def test_embedding_replaces_old_metadata():
    data = encode_face(_image(), _meta())
    meta2 = _meta()
    meta2.yaw = -40.0
    data2 = embed(data, meta2)
    assert read_meta_bytes(data2).yaw == -40.0
    assert data2.count(b"facelab\x00") == 1


def test_truncated_segments_and_foreign_files(tmp_path):
    meta = _meta(mesh=True)
    meta.extra["big"] = "y" * 100_000
    data = bytearray(encode_face(_image(), meta))
    i = data.index(b"facelab\x00\x01")  # second segment: rename its magic so it is lost
    data[i : i + 7] = b"xxxxxxx"
    with pytest.raises(FacesetError, match="truncated"):
        extract_json(bytes(data))
    plain = tmp_path / "plain.jpg"
    cv2.imwrite(str(plain), _image())
    with pytest.raises(FacesetError, match="not a facelab face"):
        read_meta(plain)
    junk = tmp_path / "junk.jpg"
    junk.write_text("hello")
    with pytest.raises(FacesetError, match="not a JPEG or PNG"):
        read_meta(junk)


def test_newer_schema_is_refused():
    d = _meta().to_dict()
    d["version"] = 99
    with pytest.raises(FacesetError, match="schema version"):
        FaceMeta.from_dict(d)


def test_readme_reader_is_short_and_reads_both_formats(tmp_path):
    """The README documents a stand-alone reader (no facelab import); it must work and stay ~20 lines."""
    code = re.search(r"```python\n(# facelab face metadata reader.*?)```", README.read_text(), re.S)
    assert code, "README lacks the documented metadata reader"
    lines = [ln for ln in code.group(1).splitlines() if ln.strip()]
    assert len(lines) <= 22
    ns: dict = {}
    exec(compile(code.group(1), "README-reader", "exec"), ns)  # noqa: S102 - our own documentation
    for fmt in ("jpg", "png"):
        path = tmp_path / f"f.{fmt}"
        meta = _meta(mesh=True)
        meta.extra["big"] = "z" * 70_000
        write_face(path, _image(), meta)
        d = ns["read_facelab_meta"](str(path))
        assert d["frame_index"] == 7 and len(d["landmarks"]) == 68 and d["extra"]["big"] == meta.extra["big"]


def test_written_files_are_ordinary_readable_files(tmp_path):
    import os
    import stat

    path = tmp_path / "f.jpg"
    write_face(path, _image(), _meta())
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
