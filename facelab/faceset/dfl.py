"""DeepFaceLab aligned faces: read their metadata safely and convert them to facelab faces.

DFL stores a dict, serialised with pickle, in one APP15 (``FF EF``) JPEG segment. ``pickle.loads`` would call any
function the file names, so an "aligned" folder from the internet could run code on the user's machine. Here a
restricted unpickler resolves only numpy's array/dtype/scalar helpers (plus ``_codecs.encode`` for protocol-2
bytes), and hands out stand-ins for them that check their arguments and build plain arrays themselves: nothing
from the file ever reaches a real constructor or ``__setstate__``.
"""

from __future__ import annotations

import io
import logging
import math
import pickle
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facelab.errors import FacesetError, UnsafePickleError
from facelab.faceset.meta import FaceMeta, embed, encode_xseg_mask
from facelab.faceset.store import face_files
from facelab.geometry.facetype import FaceType
from facelab.geometry.pose import head_pose
from facelab.geometry.umeyama import apply_affine, invert_affine
from facelab.imaging.sharpness import laplacian_sharpness
from facelab.io.atomic import ensure_writable_dir, leaves_no_empty_dirs, write_atomic
from facelab.io.paths import refuse_overlap

log = logging.getLogger(__name__)

APP15 = 0xFFEF
_SOS = 0xFFDA
_SOF = {0xFFC0 + k for k in range(16)} - {0xFFC4, 0xFFC8, 0xFFCC}  # frame headers; C4/C8/CC are DHT/JPG/DAC
_HEAD_BYTES = 1 << 18  # is_dfl_face reads this much: APP15 (<= 64 KiB) sits among the first segments

# DFL face type names -> ours. The *_no_align variants are the same crops without the rotation fit.
DFL_FACE_TYPES = {
    "half_face": FaceType.HALF,
    "midfull_face": FaceType.MID_FULL,
    "full_face": FaceType.FULL,
    "full_face_no_align": FaceType.FULL,
    "whole_face": FaceType.WHOLE_FACE,
    "head": FaceType.HEAD,
    "head_no_align": FaceType.HEAD,
}


@dataclass
class ImportSummary:
    converted: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, one-line reason)
    output: str = ""  # the facelab faceset written

    def summary(self) -> str:
        lines = [
            f"{self.converted} DFL faces converted into {self.output}"
            + (f"; {len(self.skipped)} skipped" if self.skipped else "")
        ]
        return "\n".join(lines + [f"  skipped {path}: {why}" for path, why in self.skipped[:20]])


# --- restricted unpickler --------------------------------------------------------------------------------------

_REFUSED = "refused (only plain data and numpy arrays are read)"
_DTYPE_SPEC = re.compile(r"[biufc]\d{1,2}")  # how numpy pickles plain dtypes: 'f4', 'u1', 'b1', 'c8', ...


def _oneline(text: str, limit: int = 160) -> str:
    """Text from a hostile file, made safe for a one-line message: whitespace collapsed, non-ASCII escaped, cut."""
    flat = " ".join(text.split()).encode("ascii", "backslashreplace").decode("ascii")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class _Corrupt(pickle.UnpicklingError):
    """Well-formed pickle opcodes that do not describe DFL-shaped data."""


class _Stub:
    """Base of every object the unpickler hands out for a global. ``BUILD`` on one is refused (subclasses that
    take state validate it): otherwise a pickle could set attributes on our helpers between uses."""

    __slots__ = ()

    def __setstate__(self, state: object) -> None:
        raise _Corrupt(f"{type(self).__name__} takes no state")


class _NdarrayToken(_Stub):
    """Stands for ``numpy.ndarray``. Not callable and not a type, so REDUCE/NEWOBJ on it fail; it is only
    accepted as the first argument of ``_reconstruct``."""

    __slots__ = ()


class _Dtype(_Stub):
    """``numpy.dtype(spec, align, copy)`` then ``BUILD(state)``, for plain numeric and bool dtypes only."""

    __slots__ = ("dtype",)

    def __init__(self, spec: object, align: object = False, copy: object = True) -> None:
        if not isinstance(spec, str) or not _DTYPE_SPEC.fullmatch(spec):
            raise UnsafePickleError(
                f"DFL metadata asks for a numpy array of dtype {_oneline(repr(spec), 40)}; {_REFUSED}"
            )
        dtype = np.dtype(spec)
        if dtype.kind not in "biufc" or dtype.fields is not None or dtype.subdtype is not None:
            raise UnsafePickleError(f"DFL metadata asks for a numpy array of dtype {spec!r}; {_REFUSED}")
        self.dtype = dtype

    def __setstate__(self, state: object) -> None:
        # numpy's state: (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata]).
        # Anything in subarray/names/fields would make a structured dtype; those are refused, not rebuilt.
        if not isinstance(state, tuple) or len(state) < 5 or state[1] not in ("<", ">", "|", "="):
            raise _Corrupt("malformed numpy dtype state")
        if any(s is not None for s in state[2:5]):
            raise UnsafePickleError(f"DFL metadata asks for a structured numpy dtype; {_REFUSED}")
        if state[1] in ("<", ">") and self.dtype.itemsize > 1:
            self.dtype = self.dtype.newbyteorder(state[1])


class _Array(_Stub):
    """What ``_reconstruct`` returns; its ``BUILD`` state becomes a fresh array built from the raw bytes."""

    __slots__ = ("array",)

    def __init__(self) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: object) -> None:
        if isinstance(state, tuple) and len(state) == 5:
            state = state[1:]  # drop the version number
        if not isinstance(state, tuple) or len(state) != 4:
            raise _Corrupt("malformed numpy array state")
        shape, dt, fortran, raw = state
        self.array = _array_from(dt, shape, raw, bool(fortran))


def _array_from(dt: object, shape: object, raw: object, fortran: bool) -> np.ndarray:
    """A fresh array from checked pieces of a pickle; the one place array data from a file becomes an array."""
    if not isinstance(dt, _Dtype):
        raise _Corrupt("numpy array without a dtype")
    if isinstance(raw, str):
        raw = raw.encode("latin1")  # Python 2 pickles carry the data as str
    if not isinstance(raw, (bytes, bytearray)):
        raise _Corrupt("numpy array data is not bytes")
    if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
        raise _Corrupt("malformed numpy array shape")
    if math.prod(shape) * dt.dtype.itemsize != len(raw):
        raise _Corrupt("numpy array data does not match its shape")
    flat = np.frombuffer(bytes(raw), dtype=dt.dtype)
    return flat.reshape(shape, order="F" if fortran else "C").copy()


def _frombuffer(raw: object, dt: object, shape: object, order: object = "C") -> np.ndarray:
    # Protocol 5 (Python 3.14's default) writes arrays as _frombuffer(bytes, dtype, shape, order).
    if order not in ("C", "F"):
        raise _Corrupt("malformed numpy array order")
    return _array_from(dt, shape, raw, order == "F")


def _reconstruct(cls: object, shape: object = (0,), typecode: object = b"b") -> _Array:
    if not isinstance(cls, _NdarrayToken):
        raise _Corrupt("numpy _reconstruct called with something other than numpy.ndarray")
    return _Array()


def _scalar(dt: object, raw: object = b"") -> np.generic:
    if not isinstance(dt, _Dtype) or not isinstance(raw, bytes) or len(raw) != dt.dtype.itemsize:
        raise _Corrupt("malformed numpy scalar")
    return np.frombuffer(raw, dtype=dt.dtype)[0]


def _codecs_encode(text: object, encoding: object = "utf-8") -> bytes:
    # Protocol 2 writes bytes as _codecs.encode(latin-1 text, 'latin1'); nothing else is needed.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Corrupt("_codecs.encode used for something other than bytes")
    return text.encode("latin1")


def _empty_bytes(*args: object) -> bytes:
    # Protocol 2 writes b"" as bytes(); bytes(n) would allocate n bytes, so arguments are refused.
    if args:
        raise _Corrupt("bytes() called with arguments")
    return b""


class _Call(_Stub):
    """A callable stand-in handed out per lookup: a file can call it but never modify it."""

    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[..., object]) -> None:
        self._fn = fn

    def __call__(self, *args: object) -> object:
        return self._fn(*args)


_GLOBALS: dict[tuple[str, str], Callable[[], _Stub]] = {
    ("numpy", "ndarray"): _NdarrayToken,
    ("numpy", "dtype"): lambda: _Call(_Dtype),
    ("_codecs", "encode"): lambda: _Call(_codecs_encode),
    ("__builtin__", "bytes"): lambda: _Call(_empty_bytes),
    ("builtins", "bytes"): lambda: _Call(_empty_bytes),
}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):  # numpy 1.x and 2.x module names
    _GLOBALS[(_mod, "_reconstruct")] = lambda: _Call(_reconstruct)
    _GLOBALS[(_mod, "scalar")] = lambda: _Call(_scalar)
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _GLOBALS[(_mod, "_frombuffer")] = lambda: _Call(_frombuffer)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        make = _GLOBALS.get((module, name))
        if make is None:
            raise UnsafePickleError(f"DFL metadata asks for {_oneline(f'{module}.{name}', 80)}; {_REFUSED}")
        return make()


def _resolve(obj: object, memo: dict[int, object]) -> object:
    """Replace the stand-ins in the unpickled tree by real arrays/dtypes; anything unexpected is corrupt."""
    # ndarrays and numpy scalars here were built by our stand-ins, from checked dtypes only
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, bytearray, np.generic, np.ndarray)):
        return obj
    if id(obj) in memo:  # shared or self-referencing containers
        return memo[id(obj)]
    if isinstance(obj, _Array):
        if obj.array is None:
            raise _Corrupt("numpy array without data")
        return obj.array
    if isinstance(obj, _Dtype):
        return obj.dtype
    if isinstance(obj, list):
        memo[id(obj)] = obj
        obj[:] = [_resolve(v, memo) for v in obj]
        return obj
    if isinstance(obj, dict):
        memo[id(obj)] = obj
        items = [(_resolve(k, memo), _resolve(v, memo)) for k, v in obj.items()]
        obj.clear()
        obj.update(items)
        return obj
    if isinstance(obj, (tuple, set, frozenset)):
        out = type(obj)(_resolve(v, memo) for v in obj)
        memo[id(obj)] = out
        return out
    raise _Corrupt(f"unexpected {type(obj).__name__} in the data")


def safe_unpickle(payload: bytes) -> Any:
    """Unpickle plain data and numpy arrays only. UnsafePickleError if the payload asks for any other global,
    FacesetError if it is corrupt; never runs code named by the payload."""
    try:
        raw = _RestrictedUnpickler(io.BytesIO(payload), encoding="latin1").load()
        return _resolve(raw, {})
    except UnsafePickleError:
        raise
    except Exception as e:  # any failure inside a hostile pickle is "corrupt", never a crash of the run
        raise FacesetError(f"DFL metadata is corrupt ({type(e).__name__}: {_oneline(str(e))})") from None


# --- JPEG container --------------------------------------------------------------------------------------------

_Seg = tuple[int, int, int]  # (marker, start, end) byte offsets in the file


def _segments(data: bytes) -> Iterator[_Seg]:
    """Marker segments from SOI up to and including SOS. Raises FacesetError if the header is cut short."""
    if data[:2] != b"\xff\xd8":
        raise FacesetError("not a JPEG file (DFL aligned faces are JPEGs)")
    i, n = 2, len(data)
    while True:
        if i + 2 > n:
            raise FacesetError("file is truncated (JPEG header ends early)")
        if data[i] != 0xFF:
            raise FacesetError("JPEG marker structure is corrupt")
        marker = 0xFF00 | data[i + 1]
        if marker == 0xFFFF:  # fill byte
            i += 1
            continue
        if marker == 0xFFD9:
            raise FacesetError("JPEG holds no image data")
        if 0xFFD0 <= marker <= 0xFFD8 or marker == 0xFF01:  # markers without a length field
            yield marker, i, i + 2
            i += 2
            continue
        if i + 4 > n:
            raise FacesetError("file is truncated (JPEG header ends early)")
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if length < 2:
            raise FacesetError("JPEG marker structure is corrupt")
        if i + 2 + length > n:
            raise FacesetError("file is truncated (JPEG header ends early)")
        yield marker, i, i + 2 + length
        if marker == _SOS:
            return
        i += 2 + length


def _app15_payload(data: bytes, segs: list[_Seg]) -> bytes:
    for marker, s, e in segs:
        if marker == APP15:
            return data[s + 4 : e]
    raise FacesetError("not a DFL aligned face (no DFL metadata segment)")


def _sof_shape(data: bytes, segs: list[_Seg]) -> tuple[int, int]:
    """(height, width) from the frame header, without decoding."""
    for marker, s, e in segs:
        if marker in _SOF and e - s >= 9:
            h, w = struct.unpack(">HH", data[s + 5 : s + 9])
            return h, w
    raise FacesetError("JPEG has no frame header")


def _without_app15(data: bytes, segs: list[_Seg]) -> bytes:
    """The same JPEG minus its APP15 segments; the scan data (the pixels) is copied byte for byte."""
    parts = [b"\xff\xd8"]
    for marker, s, e in segs:
        if marker == _SOS:
            parts.append(data[s:])
        elif marker not in (APP15, 0xFFD8):
            parts.append(data[s:e])
    return b"".join(parts)


def _decode(data: bytes) -> np.ndarray:
    """RGB pixels; FacesetError for a cut-off or undecodable scan (libjpeg would return a half-grey face)."""
    if data.rstrip(b"\x00")[-2:] != b"\xff\xd9":
        raise FacesetError("file is truncated (image data ends early)")
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FacesetError("image data is corrupt")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _read(path: Path, limit: int = -1) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(limit)
    except OSError as e:
        raise FacesetError(f"cannot read ({e.strerror or e})") from e


def _named(e: FacesetError, path: Path) -> FacesetError:
    return type(e)(f"{path}: {e}")


# --- public reading ---------------------------------------------------------------------------------------------


def read_dfl_meta(path: str | Path) -> dict[str, Any]:
    """The DFL metadata dict of one aligned face, read without running any code from the file.

    UnsafePickleError if the metadata asks for anything but plain data and numpy arrays; FacesetError if the
    file is not a JPEG, carries no DFL metadata, or is truncated/corrupt. Messages start with the path.
    """
    path = Path(path)
    try:
        return _parse_meta(_read(path))[0]
    except FacesetError as e:
        raise _named(e, path) from None


def _parse_meta(data: bytes) -> tuple[dict[str, Any], list[_Seg]]:
    segs = list(_segments(data))
    d = safe_unpickle(_app15_payload(data, segs))
    if not isinstance(d, dict):
        raise FacesetError(f"DFL metadata is corrupt (a {type(d).__name__}, not a dict)")
    return d, segs


def is_dfl_face(path: str | Path) -> bool:
    """True if the file is a JPEG with an APP15 segment (reads only the header; does not unpickle)."""
    try:
        data = _read(Path(path), _HEAD_BYTES)
        return any(marker == APP15 for marker, _, _ in _segments(data))
    except FacesetError:
        return False


def dfl_to_meta(
    d: dict[str, Any], path: str | Path, image_shape: tuple[int, ...], image: np.ndarray | None = None
) -> FaceMeta:
    """Convert a DFL metadata dict (``read_dfl_meta``) to a FaceMeta.

    ``image_shape`` is the aligned image's (height, width[, channels]); ``image`` (RGB), if given, is used for the
    blur score (else 0). FacesetError naming ``path`` if the dict lacks or garbles what a face needs.
    """
    path = Path(path)
    try:
        return _to_meta(d, path, image_shape, image)
    except FacesetError as e:
        raise _named(e, path) from None


def _to_meta(d: dict[str, Any], path: Path, image_shape: tuple[int, ...], image: np.ndarray | None) -> FaceMeta:
    h, w = int(image_shape[0]), int(image_shape[1])
    if h != w or w <= 0:
        raise FacesetError(f"aligned face is not square ({w}x{h})")
    try:
        face_type = _face_type(d.get("face_type"))
        lmk = _array(d.get("landmarks"), (68, 2), "landmarks")
        mat = _array(d.get("image_to_face_mat"), (2, 3), "image_to_face_mat")
        inv = invert_affine(mat)
        src = d.get("source_landmarks")
        src = apply_affine(inv, lmk) if src is None else _array(src, (68, 2), "source_landmarks")
        rect = d.get("source_rect")
        if rect is None:  # DFL always writes it; the landmark box is the best stand-in
            rect = np.r_[src.min(0), src.max(0)]
        rect = _array(rect, (4,), "source_rect")
        masks = _masks(d.get("seg_ie_polys"))
        brow = _float(d.get("eyebrows_expand_mod"), 1.0, "eyebrows_expand_mod")
        yaw, pitch, roll = head_pose(lmk, (w, w))
        blur = laplacian_sharpness(image, lmk) if image is not None else 0.0
    except (ValueError, TypeError, np.linalg.LinAlgError, cv2.error) as e:
        raise FacesetError(f"DFL metadata is malformed ({_oneline(str(e))})") from None
    extra: dict[str, Any] = {"imported_from": "dfl", "dfl_face_type": str(d["face_type"]), "eyebrows_expand_mod": brow}
    xseg = _xseg_mask(d.get("xseg_mask"))
    if xseg is None and d.get("xseg_mask") is not None:
        extra["xseg_mask"] = True  # DFL had a mask that does not decode: noted, not carried over
    name = d.get("source_filename")
    return FaceMeta(
        face_type=face_type.value, size=w, landmarks=lmk, source_landmarks=src, transform=mat, inverse=inv,
        source_file=name if isinstance(name, str) else "", source_size=(0, 0),  # DFL does not record it
        source_rect=tuple(float(v) for v in rect), face_index=_face_index(path), detector="dfl-import",
        landmarker="dfl-import", yaw=yaw, pitch=pitch, roll=roll,
        blur=blur, masks=masks, xseg_mask=xseg, extra=extra,
    )  # fmt: skip


def _xseg_mask(value: object) -> str | None:
    """DFL's applied XSeg mask (PNG, or JPEG when the PNG passed 50 KB, as encoded bytes or a uint8 array) as
    ``FaceMeta.xseg_mask``; None when absent. A mask that does not decode is dropped with a warning (the face and
    its polygons are still imported)."""
    if value is None:
        return None
    raw = value.tobytes() if isinstance(value, np.ndarray) and value.dtype == np.uint8 else value
    m = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_GRAYSCALE) if isinstance(raw, bytes) and raw else None
    if m is None or m.shape[0] != m.shape[1]:
        log.warning("DFL xseg_mask does not decode as a square image; not imported")
        return None
    return encode_xseg_mask(m)


def _face_type(name: object) -> FaceType:
    if not isinstance(name, str) or name.strip().lower() not in DFL_FACE_TYPES:
        raise FacesetError(f"DFL face type {name!r:.40} is not supported (known: {', '.join(DFL_FACE_TYPES)})")
    return DFL_FACE_TYPES[name.strip().lower()]


def _array(value: object, shape: tuple[int, ...], key: str) -> np.ndarray:
    if value is None:
        raise FacesetError(f"DFL metadata has no {key}")
    a = np.asarray(value, dtype=np.float64)
    if a.shape != shape or not np.isfinite(a).all():
        raise FacesetError(f"DFL {key} is malformed (shape {a.shape}, expected {shape} finite numbers)")
    return a


def _float(value: object, default: float, key: str) -> float:
    if value is None:
        return default
    v = float(value)  # type: ignore[arg-type]  # numpy scalar or Python number
    if not math.isfinite(v):
        raise FacesetError(f"DFL {key} is not a finite number")
    return v


def _masks(polys: object) -> list[dict[str, Any]]:
    """DFL's ``{'polys': [{'type': 0|1, 'pts': Nx2}]}`` (aligned px; 1 = include) as FaceMeta masks."""
    if polys is None:
        return []
    items = polys.get("polys", []) if isinstance(polys, dict) else polys
    if not isinstance(items, (list, tuple)):
        raise FacesetError("DFL seg_ie_polys is malformed")
    out = []
    for p in items:
        kind, pts = (p.get("type"), p.get("pts")) if isinstance(p, dict) else (None, None)
        if kind not in (0, 1) or pts is None:
            raise FacesetError("DFL seg_ie_polys is malformed")
        a = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        if not np.isfinite(a).all():
            raise FacesetError("DFL seg_ie_polys holds non-finite points")
        out.append({"type": "include" if kind == 1 else "exclude", "points": np.round(a, 3).tolist()})
    return out


def _face_index(path: Path) -> int:
    # DFL names faces <frame>_<index>.jpg
    m = re.search(r"_(\d{1,4})$", path.stem)
    return int(m.group(1)) if m else 0


def _load(path: Path, decode: bool) -> tuple[bytes, list[_Seg], FaceMeta]:
    """Bytes, segments and converted metadata of one DFL face; errors without the path (callers add it)."""
    data = _read(path)
    d, segs = _parse_meta(data)
    image = _decode(data) if decode else None
    shape = image.shape if image is not None else _sof_shape(data, segs)
    return data, segs, _to_meta(d, path, shape, image)


# --- import -----------------------------------------------------------------------------------------------------


@leaves_no_empty_dirs("out_dir")
def import_dfl(
    src_dir: str | Path, out_dir: str | Path, progress: Callable[[int, int], None] | None = None
) -> ImportSummary:
    """Convert every DFL aligned face in ``src_dir`` into a facelab face in ``out_dir`` (same name, ``.jpg``).

    The JPEG bytes are reused (APP15 removed, facelab metadata added), so the pixels are exactly the original's.
    Files that are unsafe, foreign or broken are listed in ``skipped`` and never stop the run.
    ``progress(done, total)`` is called after each file.
    """
    src, out = Path(src_dir), Path(out_dir)
    files = face_files(src)
    if not files:
        raise FacesetError(f"{src}: no images (.jpg, .jpeg, .png) to import")
    refuse_overlap({"DFL folder": src}, {"-o": out})  # the originals are kept
    ensure_writable_dir(out, "-o")
    summary = ImportSummary(output=str(out_dir))
    taken: dict[str, Path] = {}
    for done, p in enumerate(files, 1):
        target = out / f"{p.stem}.jpg"
        try:
            if target.name in taken:  # a.jpg and a.jpeg would both become a.jpg
                raise FacesetError(f"{taken[target.name].name} is already imported as {target.name}")
            data, segs, meta = _load(p, decode=True)
            face = embed(_without_app15(data, segs), meta)
        except FacesetError as e:  # UnsafePickleError included
            summary.skipped.append((str(p), str(e)))
            log.debug("skipped %s: %s", p, e)
        else:
            write_atomic(target, face)
            taken[target.name] = p
            summary.converted += 1
        if progress is not None:
            progress(done, len(files))
    if not summary.converted:  # a command that did nothing useful fails (and leaves no empty -o folder)
        (first, why), n = summary.skipped[0], len(summary.skipped)
        more = f"; +{n - 1} more" if n > 1 else ""
        files = "1 file" if n == 1 else f"{n} files"
        raise FacesetError(f"{src}: no DFL faces imported ({files} skipped: {Path(first).name}: {why}{more})")
    return summary
