"""Extraction: media -> frames -> faces (detect, landmarks, refine) -> smoothing -> alignment -> faceset on disk.

Decoding runs in a reader thread and JPEG encoding + atomic writes in a writer thread, so the main thread only
does detection and landmarks. Progress is checkpointed in ``.facelab-extract.json``: an interrupted run restarts
after the last finished frame and, because face files are named by frame and index, never duplicates a face.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from facelab import __version__
from facelab.config import ExtractConfig
from facelab.errors import FacelabError, MediaError
from facelab.faces.finder import FaceFinder, FoundFace
from facelab.faces.identity import IdentityFilter
from facelab.faces.smoothing import LandmarkSmoother
from facelab.faceset.meta import FaceMeta
from facelab.faceset.store import write_face
from facelab.geometry.align import align_face
from facelab.geometry.facetype import FaceType, transform_matrix
from facelab.geometry.pose import head_pose
from facelab.geometry.umeyama import apply_affine, invert_affine, umeyama
from facelab.imaging.sharpness import laplacian_sharpness
from facelab.io.atomic import ensure_writable_dir, leaves_no_empty_dirs, write_atomic
from facelab.io.media import DecodeCheck, Frame, iter_frames, probe
from facelab.io.paths import media_label, refuse_overlap
from facelab.io.prefetch import prefetch

log = logging.getLogger(__name__)

STATE_FILE = ".facelab-extract.json"
SUMMARY_FILE = "extract-summary.json"


@dataclass
class ExtractSummary:
    source: str
    output: str
    frames_read: int = 0
    faces_written: int = 0
    frames_without_face: list[str] = field(default_factory=list)
    faces_rejected_identity: int = 0
    unreadable: list[str] = field(default_factory=list)
    resumed_from: int = 0
    seconds: float = 0.0
    only_like: str | None = None  # the reference photo of the identity filter, if one was used

    @property
    def fps(self) -> float:
        return self.frames_read / self.seconds if self.seconds > 0 else 0.0

    @property
    def already_done(self) -> bool:
        """Nothing was read because an earlier run completed this extraction."""
        return self.frames_read == 0 and bool(self.resumed_from) and not self.faces_written

    def summary(self) -> str:
        if self.already_done:
            return f"{self.source}: already extracted into {self.output} (use --force to redo)"
        resumed = ", resumed at " + str(self.resumed_from) if self.resumed_from else ""
        lines = [
            f"{self.frames_read} frames read, {self.faces_written} faces written to {self.output} "
            f"({self.fps:.1f} frames/s{resumed})"
        ]
        if self.frames_without_face:
            shown = ", ".join(self.frames_without_face[:10]) + (" ..." if len(self.frames_without_face) > 10 else "")
            n = len(self.frames_without_face)
            lines.append(f"{n} frames with no face: {shown} (full list in {SUMMARY_FILE})")
        if self.faces_rejected_identity:
            lines.append(f"{self.faces_rejected_identity} faces skipped as not like {self.only_like}")
        if self.unreadable:
            lines.append(f"{len(self.unreadable)} unreadable images skipped")
        return "\n".join(lines)


def face_meta(
    frame: Frame,
    found: FoundFace,
    index: int,
    m: np.ndarray,
    face_img: np.ndarray,
    cfg: ExtractConfig,
    finder_names: tuple[str, str],
) -> FaceMeta:
    aligned = apply_affine(m, found.points)
    h, w = frame.image.shape[:2]
    yaw, pitch, roll = head_pose(aligned, (cfg.size, cfg.size))
    return FaceMeta(
        face_type=FaceType.parse(cfg.face_type).value,
        size=cfg.size,
        landmarks=aligned,
        source_landmarks=found.points,
        transform=m,
        inverse=invert_affine(m),
        source_file=frame.source,
        source_size=(w, h),
        source_rect=tuple(found.box.as_list()),
        face_index=index,
        frame_index=frame.index,
        timestamp=frame.timestamp,
        detector=finder_names[0],
        detector_score=found.box.score,
        landmarker=found.landmarker or finder_names[1] + ("+refine" if cfg.refine else ""),
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        blur=laplacian_sharpness(face_img, aligned),
        mesh=found.mesh,
        extra={"facelab_version": __version__},
    )


class _State:
    """Resume checkpoint: per source, the next frame (or image) position to process."""

    def __init__(self, out: Path) -> None:
        self.path = out / STATE_FILE
        self.data: dict = {"version": 1, "sources": {}}
        if self.path.exists():
            try:
                self.data = json.loads(self.path.read_text())
            except (OSError, ValueError):
                log.warning("%s: unreadable resume state, starting over", self.path)
        self._last_save = 0.0

    def get(self, source: str) -> dict:
        return self.data["sources"].get(source, {"next": 0, "complete": False})

    def set(
        self, source: str, next_pos: int, complete: bool = False, force: bool = False, best_effort: bool = False
    ) -> None:
        """Record the resume point (saved at most every 2 s unless ``force``). ``best_effort``: a failed save
        is only logged - the state on disk is then older, which redoes frames but loses none."""
        self.data["sources"][source] = {"next": next_pos, "complete": complete}
        now = time.monotonic()
        if force or now - self._last_save > 2.0:
            try:
                write_atomic(self.path, json.dumps(self.data, indent=1).encode())
            except FacelabError as e:
                if not best_effort:
                    raise
                log.warning("%s", e)
            self._last_save = now

    def forget(self, source: str) -> None:
        """Drop ``source``'s entry (a run that extracted nothing leaves no trace); the file goes with the last one."""
        self.data["sources"].pop(source, None)
        try:
            if self.data["sources"]:
                write_atomic(self.path, json.dumps(self.data, indent=1).encode())
            else:
                self.path.unlink(missing_ok=True)
        except (OSError, FacelabError) as e:  # a stale entry only redoes this source next time
            log.warning("%s: %s", self.path, getattr(e, "strerror", None) or e)


@leaves_no_empty_dirs("output")  # a failed extraction (no face, bad --only-like photo) leaves no empty faceset
def extract(
    source: str | Path,
    output: str | Path,
    cfg: ExtractConfig | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    force: bool = False,
) -> ExtractSummary:
    """Extract every face of ``source`` (video, image folder or image) into the faceset folder ``output``.

    ``progress(done, total)`` is called after every frame. Returns a summary; also written as ``extract-summary.json``.
    """
    cfg = cfg or ExtractConfig()
    source, out = Path(source), Path(output)
    refuse_overlap(
        {media_label("input", source): source, "reference photo": cfg.only_like},
        {"-o": out, "--debug": cfg.debug_dir},
    )
    face_type = FaceType.parse(cfg.face_type)
    if cfg.image_format not in ("jpg", "png"):
        raise FacelabError(f"unknown image format {cfg.image_format!r} (jpg or png)")
    if not source.exists():
        raise MediaError(f"{source}: no such file or folder")
    info = probe(source)  # fails early, with a one-line error, on non-media
    ensure_writable_dir(out, "-o")
    state = _State(out)
    key = str(source.resolve())
    st = {"next": 0, "complete": False} if force else state.get(key)
    summary = ExtractSummary(str(source), str(out), resumed_from=st["next"], only_like=cfg.only_like)
    if st["complete"]:
        log.info("%s: already extracted into %s (use --force to redo)", source, out)
        return summary
    finder = FaceFinder(cfg.detector, cfg.landmarker, cfg.refine, cfg.min_face)
    identity = IdentityFilter(cfg.only_like, cfg.only_like_threshold, finder) if cfg.only_like else None
    smoother = LandmarkSmoother(cfg.smooth_min_cutoff, cfg.smooth_beta) if cfg.smooth and info.kind == "video" else None
    debug = ensure_writable_dir(cfg.debug_dir) if cfg.debug_dir else None
    total = info.frames // cfg.every + (1 if info.frames % cfg.every else 0) if info.frames else None
    pending: list[tuple[Future | None, int]] = []  # (write, input position after its frame), in frame order
    t0 = time.perf_counter()
    done_pos = st["next"]  # every frame before this position is completely on disk

    def drain(block: bool) -> None:
        nonlocal done_pos
        while pending and (block or pending[0][0] is None or pending[0][0].done()):
            fut, pos = pending[0]
            if fut is not None:
                fut.result()  # a failed write raises while still queued: the resume point stays before its frame
            pending.pop(0)
            done_pos = pos

    def settle() -> BaseException | None:
        """Finish the queued writes; the resume point advances only over the frames before the first failed
        write (later writes are cancelled or ignored: one full disk gives one error, the first)."""
        nonlocal done_pos
        failed: BaseException | None = None
        for fut, pos in pending:
            if fut is not None and failed is not None:
                fut.cancel()
            elif fut is not None:
                failed = fut.exception()
            if failed is None:
                done_pos = pos
        pending.clear()
        return failed

    def on_error(path: str, err: MediaError) -> None:
        log.warning("%s", err)
        summary.unreadable.append(path)

    decoded = DecodeCheck()  # a video that ends before its declared frame count is reported after its faces
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="facelab-write") as writer:
        try:
            frames = prefetch(iter_frames(source, cfg.every, st["next"], on_error=on_error, check=decoded))
            for frame, faces in _find_faces(frames, finder, cfg):
                if smoother is not None and frame.timestamp is not None:
                    smoothed = smoother(frame.timestamp, [(f.box, f.points) for f in faces])
                    faces = [_moved(f, p) for f, p in zip(faces, smoothed)]
                written = 0
                for idx, found in enumerate(faces):
                    if identity is not None and not identity.matches(frame.image, found.points):
                        summary.faces_rejected_identity += 1
                        continue
                    face_img, m = align_face(frame.image, found.points, face_type, cfg.size, cfg.interpolation)
                    meta = face_meta(frame, found, idx, m, face_img, cfg, finder.names)
                    path = out / f"{frame.name}_{idx}.{cfg.image_format}"
                    pending.append((writer.submit(write_face, path, face_img, meta, cfg.jpeg_quality), frame.position))
                    written += 1
                if debug is not None:
                    dbg = writer.submit(_write_debug, debug / f"{frame.name}.jpg", frame.image, faces, face_type)
                    pending.append((dbg, frame.position))
                pending.append((None, frame.position + 1))
                summary.frames_read += 1
                summary.faces_written += written
                if not written:
                    summary.frames_without_face.append(frame.name)
                drain(block=len(pending) > 32)
                state.set(key, done_pos, best_effort=True)
                if progress:
                    progress(summary.frames_read, total)
        except BaseException as e:
            # Frames already handed to the writer are finished (a Ctrl+C loses nothing), then the resume point
            # is saved, so a re-run starts right after the last frame whose faces are all on disk. The error
            # in flight stays the one reported (a write failing later, or the state save, must not replace it).
            late = settle()
            if late is not None and late is not e:
                log.warning("%s", late)
            state.set(key, done_pos, force=True, best_effort=True)
            raise
        failed = settle()
        if failed is not None:
            state.set(key, done_pos, force=True, best_effort=True)
            raise failed
    if not summary.faces_written and not summary.resumed_from and not decoded.short:
        # a whole input without one face is an error, not an empty faceset (the state goes; so does a new folder)
        finder.close()
        state.forget(key)
        raise FacelabError(_no_faces(source, summary, "frame" if info.kind == "video" else "image"))
    # a truncated video is never "complete": a re-run resumes after its last decoded frame and reports it again
    state.set(key, done_pos, complete=not decoded.short, force=True)
    summary.seconds = time.perf_counter() - t0
    write_atomic(out / SUMMARY_FILE, json.dumps({**asdict(summary), "fps": summary.fps}, indent=1).encode())
    finder.close()
    if decoded.short:
        raise MediaError(f"{decoded.message(source)}; the faces of those frames are in {out}")
    return summary


def _no_faces(source: Path, s: ExtractSummary, unit: str) -> str:
    """``clip.mp4: no faces found in 120 frames`` (with what else was skipped: other people, unreadable images)."""
    if s.faces_rejected_identity:
        return (
            f"{source}: no faces like {s.only_like} found in {_count(s.frames_read, unit)} "
            f"({_count(s.faces_rejected_identity, 'face')} of other people skipped)"
        )
    unreadable = f" ({len(s.unreadable)} unreadable skipped)" if s.unreadable else ""
    return f"{source}: no faces found in {_count(s.frames_read, unit)}{unreadable}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _moved(face: FoundFace, points: np.ndarray) -> FoundFace:
    """``face`` with smoothed ``points``; its dense mesh follows by the similarity that maps old to new points."""
    mesh = face.mesh
    if mesh is not None:
        t = umeyama(face.points, points)
        mesh = mesh.copy()
        mesh[:, :2] = apply_affine(t, mesh[:, :2])
    return FoundFace(face.box, points, mesh)


def _find_faces(
    frames: Iterator[Frame], finder: FaceFinder, cfg: ExtractConfig
) -> Iterator[tuple[Frame, list[FoundFace]]]:
    """(frame, faces) in frame order; with ``cfg.jobs`` > 1, frames are searched by several finders in threads
    (dlib and mediapipe release the GIL while they compute)."""
    if cfg.jobs <= 1:
        for frame in frames:
            yield frame, finder.find(frame.image, cfg.max_faces)
        return
    local = threading.local()
    extra: list[FaceFinder] = []

    def find(frame: Frame) -> tuple[Frame, list[FoundFace]]:
        f = getattr(local, "finder", None)
        if f is None:
            f = local.finder = FaceFinder(cfg.detector, cfg.landmarker, cfg.refine, cfg.min_face)
            extra.append(f)
        return frame, f.find(frame.image, cfg.max_faces)

    window: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=cfg.jobs, thread_name_prefix="facelab-find") as pool:
        try:
            for frame in frames:
                window.append(pool.submit(find, frame))
                if len(window) >= 2 * cfg.jobs:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        finally:
            for fut in window:
                fut.cancel()
    for f in extra:
        f.close()


def _write_debug(path: Path, image: np.ndarray, faces: list[FoundFace], face_type: FaceType) -> None:
    img = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    for f in faces:
        b = f.box
        cv2.rectangle(img, (int(b.x0), int(b.y0)), (int(b.x1), int(b.y1)), (0, 255, 0), 2)
        for x, y in f.points:
            cv2.circle(img, (int(round(x)), int(round(y))), 2, (0, 0, 255), -1)
        inv = invert_affine(transform_matrix(f.points, 1, face_type))
        quad = apply_affine(inv, np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float))
        cv2.polylines(img, [np.round(quad).astype(np.int32)], True, (255, 128, 0), 2)
        cv2.fillConvexPoly(
            img,
            np.round([quad[0], quad[0] + (quad[1] - quad[0]) * 0.1, quad[0] + (quad[3] - quad[0]) * 0.1]).astype(
                np.int32
            ),
            (255, 128, 0),
        )
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 75])
    if ok:
        write_atomic(path, buf.tobytes())
