"""DFL aligned-face import: metadata read with a restricted unpickler, pixels carried over byte for byte.

The DFL files are built here (Grace Hopper aligned as DFL would, metadata pickled the way DFL pickles it); the
hostile ones carry pickles that would run a command under ``pickle.loads``. Nothing here ever unpickles them
with the real unpickler.
"""

from __future__ import annotations

import functools
import os
import pickle
import struct
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from facelab.errors import FacesetError, UnsafePickleError
from facelab.faceset.dfl import (
    dfl_to_meta,
    import_dfl,
    is_dfl_face,
    read_dfl_meta,
    safe_unpickle,
)
from facelab.faceset.index import load_metas
from facelab.faceset.store import read_face
from facelab.geometry.align import align_face
from facelab.geometry.umeyama import apply_affine

# --- building DFL files -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aligned(hopper, finder) -> dict:
    found = finder.find(hopper)[0]
    face, mat = align_face(hopper, found.points, "whole_face", 256)
    return {"face": face, "mat": mat, "points": found.points, "box": found.box.as_list()}


def dfl_dict(aligned: dict) -> dict:
    """Metadata shaped like DFL's own: numpy arrays and a numpy scalar, not just lists."""
    lmk = apply_affine(aligned["mat"], aligned["points"]).astype(np.float32)
    return {
        "face_type": "whole_face",
        "landmarks": lmk,
        "source_filename": "hopper.png",
        "source_rect": [int(round(v)) for v in aligned["box"]],
        "source_landmarks": aligned["points"].tolist(),
        "image_to_face_mat": np.asarray(aligned["mat"], dtype=np.float64),
        "eyebrows_expand_mod": np.float32(1.0),
        "seg_ie_polys": {
            "polys": [
                {"type": 1, "pts": np.array([[20, 30], [230, 30], [230, 250], [20, 250]], dtype=np.float32)},
                {"type": 0, "pts": np.array([[100, 100], [150, 100], [125, 140.5]], dtype=np.float32)},
            ]
        },
    }


def plain_jpeg(face: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(face, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return buf.tobytes()


def with_app15(jpeg: bytes, payload: bytes) -> bytes:
    """Insert ``payload`` as an APP15 segment after SOI and the JFIF APP0, where DFL puts it."""
    assert jpeg[:4] == b"\xff\xd8\xff\xe0"
    at = 4 + struct.unpack(">H", jpeg[4:6])[0]
    return jpeg[:at] + struct.pack(">HH", 0xFFEF, len(payload) + 2) + payload + jpeg[at:]


def write_dfl(path: Path, face: np.ndarray, payload: bytes) -> Path:
    path.write_bytes(with_app15(plain_jpeg(face), payload))
    return path


def as_numpy1(payload: bytes) -> bytes:
    """The same pickle as numpy 1.x writes it (``numpy.core.multiarray``), fixing protocol 4's frame length."""
    new, old = b"numpy.core.multiarray", b"numpy._core.multiarray"
    if payload[:2] == b"\x80\x04":
        assert payload[2:3] == b"\x95"  # one frame: the whole (small) pickle
        body = payload[11:].replace(bytes([0x8C, len(old)]) + old, bytes([0x8C, len(new)]) + new)
        return payload[:3] + struct.pack("<Q", len(body)) + body
    return payload.replace(old + b"\n", new + b"\n")


def assert_same_dfl(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for k in ("landmarks", "image_to_face_mat"):
        assert isinstance(got[k], np.ndarray) and got[k].dtype == want[k].dtype
        np.testing.assert_array_equal(got[k], want[k])
    assert got["source_landmarks"] == want["source_landmarks"]
    assert got["source_rect"] == want["source_rect"] and got["face_type"] == "whole_face"
    assert isinstance(got["eyebrows_expand_mod"], np.float32) and got["eyebrows_expand_mod"] == 1.0
    for g, w in zip(got["seg_ie_polys"]["polys"], want["seg_ie_polys"]["polys"], strict=True):
        assert g["type"] == w["type"] and g["pts"].dtype == np.float32
        np.testing.assert_array_equal(g["pts"], w["pts"])


# --- reading ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "numpy1"),
    [(2, False), (4, False), (5, False), (2, True), (4, True)],
    ids=["p2", "p4", "p5", "p2-numpy1-names", "p4-numpy1-names"],
)
def test_read_dfl_meta_returns_equal_arrays(tmp_path, aligned, protocol, numpy1):
    # DFL writes protocol 3/4 (2 under old Pythons; 5 is Python 3.14's default), with numpy 1.x or 2.x names.
    d = dfl_dict(aligned)
    payload = pickle.dumps(d, protocol=protocol)
    if numpy1:
        payload = as_numpy1(payload)
        assert b"numpy.core.multiarray" in payload and b"numpy._core" not in payload
    p = write_dfl(tmp_path / "00001_0.jpg", aligned["face"], payload)
    assert is_dfl_face(p)
    assert_same_dfl(read_dfl_meta(p), d)


def test_is_dfl_face_is_false_for_other_files(tmp_path, aligned):
    (tmp_path / "plain.jpg").write_bytes(plain_jpeg(aligned["face"]))
    ok, png = cv2.imencode(".png", aligned["face"])
    (tmp_path / "face.png").write_bytes(png.tobytes())
    assert not is_dfl_face(tmp_path / "plain.jpg")
    assert not is_dfl_face(tmp_path / "face.png")
    assert not is_dfl_face(tmp_path / "missing.jpg")


def test_read_dfl_meta_errors_name_the_file(tmp_path, aligned):
    plain = tmp_path / "plain.jpg"
    plain.write_bytes(plain_jpeg(aligned["face"]))
    with pytest.raises(FacesetError, match=r"plain\.jpg: not a DFL aligned face"):
        read_dfl_meta(plain)
    good = with_app15(plain_jpeg(aligned["face"]), pickle.dumps(dfl_dict(aligned), protocol=4))
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good[:300])  # inside the APP15 segment
    with pytest.raises(FacesetError, match=r"cut\.jpg: file is truncated"):
        read_dfl_meta(cut)
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    with pytest.raises(FacesetError, match="not a JPEG"):
        read_dfl_meta(text)


@pytest.mark.parametrize(
    "payload",
    [b"garbage", b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94", b"\x80\x02]q\x00(K\x01K\x02e."],
    ids=["garbage", "cut-pickle", "a-list"],
)
def test_corrupt_pickle_is_a_plain_faceset_error(tmp_path, aligned, payload):
    p = write_dfl(tmp_path / "bad.jpg", aligned["face"], payload)
    with pytest.raises(FacesetError, match=r"bad\.jpg: DFL metadata is corrupt") as e:
        read_dfl_meta(p)
    assert not isinstance(e.value, UnsafePickleError)


# --- hostile pickles --------------------------------------------------------------------------------------------


class _Reduce:
    """Pickles as a call of ``fn(*args)`` (what a hostile DFL file would contain)."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def hostile_payloads(marker: Path) -> dict[str, bytes]:
    cmd = f"touch {marker}"
    evil = {
        "os.system": _Reduce(os.system, cmd),
        "builtins.exec": _Reduce(exec, f"open({str(marker)!r}, 'w').close()"),
        "builtins.eval": _Reduce(eval, f"__import__('os').system({cmd!r})"),
        "subprocess.Popen": _Reduce(subprocess.Popen, ["touch", str(marker)]),
        "functools.partial": functools.partial(os.system, cmd),
        "numpy.load": _Reduce(np.load, str(marker)),
    }
    out = {}
    for name, obj in evil.items():
        # Hidden inside an otherwise DFL-looking dict, as the value of a key a reader would touch.
        out[f"{name}-p4"] = pickle.dumps({"face_type": "whole_face", "landmarks": obj}, protocol=4)
        out[f"{name}-p2"] = pickle.dumps({"face_type": "whole_face", "landmarks": obj}, protocol=2)
    out["protocol0-handmade"] = b"cos\nsystem\n(S'" + cmd.encode() + b"'\ntR."
    out["object-dtype"] = pickle.dumps({"landmarks": np.array([1, "x", None], dtype=object)}, protocol=4)
    out["object-dtype-p2"] = pickle.dumps({"landmarks": np.array([1, "x", None], dtype=object)}, protocol=2)
    out["structured-dtype"] = pickle.dumps({"landmarks": np.zeros(2, dtype=[("a", "f4"), ("b", "O")])}, protocol=4)
    # A plain dtype whose BUILD state tries to turn it into a structured one.
    out["dtype-state-fields"] = b"cnumpy\ndtype\n(S'f4'\nI00\nI01\ntR(I3\nS'<'\nN(S'a'\ntp0\n(dp1\nI-1\nI-1\nI0\ntb."
    # numpy's array rebuild helper asked to build some other class.
    out["reconstruct-memmap"] = b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nmemmap\n(I0\ntS'b'\ntR."
    return out


@pytest.mark.parametrize(
    "name",
    [
        *(
            f"{n}-{p}"
            for n in ("os.system", "builtins.exec", "builtins.eval", "subprocess.Popen")
            for p in ("p4", "p2")
        ),
        "functools.partial-p4",
        "numpy.load-p4",
        "protocol0-handmade",
        "object-dtype",
        "object-dtype-p2",
        "structured-dtype",
        "dtype-state-fields",
        "reconstruct-memmap",
    ],
)
def test_hostile_pickle_is_refused_and_never_runs(tmp_path, aligned, name):
    marker = tmp_path / "MARKER"
    payload = hostile_payloads(marker)[name]
    p = write_dfl(tmp_path / "evil.jpg", aligned["face"], payload)
    with pytest.raises(UnsafePickleError, match=r"evil\.jpg: DFL metadata asks for .*refused") as e:
        read_dfl_meta(p)
    assert "\n" not in str(e.value)
    assert not marker.exists()


def test_refusal_names_the_global(tmp_path, aligned):
    marker = tmp_path / "MARKER"
    p = write_dfl(tmp_path / "evil.jpg", aligned["face"], hostile_payloads(marker)["protocol0-handmade"])
    with pytest.raises(UnsafePickleError, match=r"asks for os\.system; refused \(only plain data and numpy arrays"):
        read_dfl_meta(p)


@pytest.mark.parametrize(
    "payload",
    [
        b"cnumpy\nndarray\n((I2\ntS'O'\ntR.",  # numpy.ndarray called directly
        b"cnumpy\nndarray\n)\x81.",  # NEWOBJ on it
        b"c_codecs\nencode\n(S'x'\nS'rot13'\ntR.",  # _codecs.encode for anything but bytes
        b"c__builtin__\nbytes\n(I1000000000000\ntR.",  # bytes(n) would allocate n bytes
        b"cnumpy\ndtype\n(S'f4'\nI00\nI01\ntR(dp0\nS'x'\nI1\nsb.",  # BUILD with a dict on a dtype
        b"cnumpy.core.multiarray\nscalar\n(cnumpy\ndtype\n(S'f8'\nI00\nI01\ntRS'ab'\ntR.",  # wrong byte count
        b"\x80\x02cnumpy\ndtype\nq\x00(}q\x01X\x01\x00\x00\x00xK\x01stb.",  # BUILD on the helper itself
    ],
    ids=["call-ndarray", "newobj-ndarray", "codecs-rot13", "bytes-alloc", "dtype-dict-state", "scalar-size",
         "build-helper"],
)  # fmt: skip
def test_allowed_helpers_only_build_plain_data(payload):
    with pytest.raises(FacesetError):
        safe_unpickle(payload)


# --- conversion ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dfl_name", "ours"),
    [("half_face", "half"), ("midfull_face", "mid_full"), ("full_face", "full"), ("full_face_no_align", "full"),
     ("whole_face", "whole_face"), ("head", "head")],
)  # fmt: skip
def test_face_type_names(aligned, dfl_name, ours):
    d = dfl_dict(aligned) | {"face_type": dfl_name}
    assert dfl_to_meta(d, "00001_0.jpg", (256, 256, 3)).face_type == ours


def test_unknown_face_type_and_missing_landmarks(aligned):
    with pytest.raises(FacesetError, match=r"x\.jpg: DFL face type 'mark_only' is not supported"):
        dfl_to_meta(dfl_dict(aligned) | {"face_type": "mark_only"}, "x.jpg", (256, 256, 3))
    d = dfl_dict(aligned)
    del d["landmarks"]
    with pytest.raises(FacesetError, match="no landmarks"):
        dfl_to_meta(d, "x.jpg", (256, 256, 3))


def test_dfl_to_meta_fields(aligned):
    d = dfl_dict(aligned)
    meta = dfl_to_meta(d, "00012_1.jpg", (256, 256, 3), aligned["face"])
    assert meta.size == 256 and meta.face_index == 1 and meta.source_size == (0, 0)
    assert meta.source_file == "hopper.png" and meta.detector == meta.landmarker == "dfl-import"
    np.testing.assert_allclose(meta.transform, aligned["mat"])
    np.testing.assert_allclose(apply_affine(meta.inverse, meta.landmarks), aligned["points"], atol=1e-3)
    assert meta.extra == {"imported_from": "dfl", "dfl_face_type": "whole_face", "eyebrows_expand_mod": 1.0}
    assert [m["type"] for m in meta.masks] == ["include", "exclude"]
    assert meta.masks[1]["points"] == [[100.0, 100.0], [150.0, 100.0], [125.0, 140.5]]
    assert abs(meta.yaw) < 30 and abs(meta.pitch) < 30 and abs(meta.roll) < 20
    assert meta.blur > 0
    assert dfl_to_meta(d, "a.jpg", (256, 256, 3)).blur == 0.0  # no pixels given


def test_missing_source_landmarks_are_derived(aligned):
    d = dfl_dict(aligned)
    del d["source_landmarks"], d["source_rect"]
    d["xseg_mask"] = b"\x89PNG..."
    meta = dfl_to_meta(d, "a.jpg", (256, 256, 3))
    np.testing.assert_allclose(meta.source_landmarks, aligned["points"], atol=1e-3)
    assert meta.source_rect[0] < meta.source_rect[2] and meta.extra["xseg_mask"] is True


# --- import -------------------------------------------------------------------------------------------------------


def scan_data(jpeg: bytes) -> bytes:
    """Bytes from SOS on: the entropy-coded pixels."""
    i = 2
    while jpeg[i + 1] != 0xDA:
        i += 2 + struct.unpack(">H", jpeg[i + 2 : i + 4])[0]
    return jpeg[i:]


def test_import_converts_with_pixels_unchanged(tmp_path, aligned):
    src, out = tmp_path / "aligned", tmp_path / "faces"
    src.mkdir()
    d = dfl_dict(aligned)
    p = write_dfl(src / "00001_0.jpg", aligned["face"], pickle.dumps(d, protocol=4))
    done = []
    s = import_dfl(src, out, progress=lambda i, n: done.append((i, n)))
    assert s.converted == 1 and s.skipped == [] and done == [(1, 1)]
    dst = out / "00001_0.jpg"
    image, meta = read_face(dst)
    want = cv2.cvtColor(cv2.imdecode(np.fromfile(p, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(image, want)
    assert scan_data(dst.read_bytes()) == scan_data(p.read_bytes())  # not re-encoded
    assert not is_dfl_face(dst)  # the pickle is gone
    np.testing.assert_allclose(meta.landmarks, d["landmarks"], atol=1e-3)
    np.testing.assert_allclose(meta.transform, d["image_to_face_mat"], atol=1e-3)
    np.testing.assert_allclose(meta.source_landmarks, aligned["points"], atol=1e-3)
    assert meta.face_type == "whole_face" and meta.size == 256 and meta.blur > 0
    assert meta.extra["imported_from"] == "dfl" and len(meta.masks) == 2


def test_import_skips_hostile_and_broken_files_and_keeps_going(tmp_path, aligned):
    src, out, marker = tmp_path / "aligned", tmp_path / "faces", tmp_path / "MARKER"
    src.mkdir()
    good = pickle.dumps(dfl_dict(aligned), protocol=4)
    write_dfl(src / "a_good.jpg", aligned["face"], good)
    write_dfl(src / "b_evil.jpg", aligned["face"], hostile_payloads(marker)["os.system-p4"])
    (src / "c_plain.jpg").write_bytes(plain_jpeg(aligned["face"]))
    whole = with_app15(plain_jpeg(aligned["face"]), good)
    (src / "d_cut.jpg").write_bytes(whole[: len(whole) - 500])  # scan cut short
    (src / "e_header.jpg").write_bytes(whole[:200])
    s = import_dfl(src, out)
    assert not marker.exists()
    assert s.converted == 1 and sorted(p.name for p in out.iterdir()) == ["a_good.jpg"]
    why = {Path(p).name: reason for p, reason in s.skipped}
    assert why.keys() == {"b_evil.jpg", "c_plain.jpg", "d_cut.jpg", "e_header.jpg"}
    assert "asks for posix.system; refused" in why["b_evil.jpg"] or "asks for os.system" in why["b_evil.jpg"]
    assert "not a DFL aligned face" in why["c_plain.jpg"]
    assert "truncated" in why["d_cut.jpg"] and "truncated" in why["e_header.jpg"]
    assert all("\n" not in r and not r.startswith(str(src)) for r in why.values())


def test_import_folder_errors(tmp_path):
    with pytest.raises(FacesetError, match="no such"):
        import_dfl(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FacesetError, match="no images"):
        import_dfl(tmp_path / "empty", tmp_path / "out")


def test_dfl_folder_reads_as_a_faceset_skipping_hostile_files(tmp_path, aligned, caplog):
    # load_metas (what sort, dedupe, train... read) falls back to DFL metadata for faces without facelab's own
    write_dfl(tmp_path / "a.jpg", aligned["face"], pickle.dumps(dfl_dict(aligned), protocol=4))
    write_dfl(tmp_path / "b.jpg", aligned["face"], hostile_payloads(tmp_path / "MARKER")["subprocess.Popen-p2"])
    faces = load_metas(tmp_path)
    assert [p.name for p, _ in faces] == ["a.jpg"] and faces[0][1].blur > 0 and faces[0][1].size == 256
    assert "b.jpg" in caplog.text and "refused" in caplog.text
    assert not (tmp_path / "MARKER").exists()


def test_cli_faceset_import(tmp_path, aligned, capsys):
    from facelab.cli import main

    src, out = tmp_path / "aligned", tmp_path / "faces"
    src.mkdir()
    write_dfl(src / "00001_0.jpg", aligned["face"], pickle.dumps(dfl_dict(aligned), protocol=4))
    (src / "plain.jpg").write_bytes(plain_jpeg(aligned["face"]))
    assert main(["faceset", "import", str(src), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 DFL faces converted" in printed and "1 skipped" in printed
    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == ["00001_0.jpg"]
    assert read_face(out / "00001_0.jpg")[1].face_type == "whole_face"


def test_import_of_nothing_fails_and_leaves_no_folder(tmp_path, aligned, capsys):
    from facelab.cli import main

    src, out = tmp_path / "aligned", tmp_path / "new" / "faces"
    src.mkdir()
    (src / "plain.jpg").write_bytes(plain_jpeg(aligned["face"]))
    (src / "empty.jpg").write_bytes(b"")
    assert main(["faceset", "import", str(src), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"facelab: error: {src}: no DFL faces imported (2 files skipped: empty.jpg: ")
    assert "; +1 more)" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "new").exists()  # neither the folder nor its parent, both made for the import
