"""Merge: dst video or frame folder -> faces (from its faceset, or found on the fly) -> batched swap -> masks,
colour, blend -> H.264 with the dst's audio copied (or PNG frames) and a synthetic-media tag.

Decoding runs ahead in a thread and encoding happens in the writer; the model sees faces in batches
(``MergeConfig.batch``), not one per call as in DFL.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch

from facelab import __version__
from facelab.config import ExtractConfig, MergeConfig, ModelConfig
from facelab.errors import FacelabError, MediaError
from facelab.faces.finder import FaceFinder
from facelab.faces.identity import IdentityFilter
from facelab.faces.smoothing import LandmarkSmoother
from facelab.faceset.index import load_metas
from facelab.geometry.facetype import FaceType, transform_matrix
from facelab.imaging.masks import hull_mask, polygon_mask
from facelab.io.atomic import write_atomic
from facelab.io.media import (
    DecodeCheck,
    Frame,
    FrameSequence,
    MediaInfo,
    frame_sequence,
    iter_frames,
    iter_sequence,
    probe,
)
from facelab.io.paths import media_label, refuse_overlap
from facelab.io.prefetch import prefetch
from facelab.io.video import open_writer, synthetic_tag
from facelab.merge import blend, xseg
from facelab.merge.settings import MergeSettings
from facelab.models.load import load_model
from facelab.models.precision import autocast_dtype
from facelab.models.saehd import SAEHD
from facelab.models.xseg import MaskModel, load_mask_model

log = logging.getLogger(__name__)


@dataclass
class MergeSummary:
    output: str
    frames: int = 0
    frames_declared: int | None = None  # what the dst declares (a video's container count, a folder's images)
    faces_swapped: int = 0
    frames_without_face: int = 0
    faces_hull_fallback: int = 0  # mask mode "stored": faces without stored polygons, merged with the hull mask
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        of = f" of {self.frames_declared}" if self.frames_declared not in (None, self.frames) else ""
        return (
            f"{self.frames}{of} frames, {self.faces_swapped} faces swapped ({self.fps:.1f} frames/s) -> {self.output}; "
            f"settings in {self.output.rstrip('/')}.merge.json"
        )


# --- where the faces are -------------------------------------------------------------------------------------------


DEFAULT_SEQUENCE_FPS = 30.0  # a frame folder carries no rate; video output uses this unless told otherwise


@dataclass
class PlannedFace:
    """One face of the dst faceset: where it is in the frame and the mask polygons stored with it."""

    landmarks: np.ndarray  # (68, 2) source px
    polygons: list[dict[str, Any]] = field(default_factory=list)  # FaceMeta.masks: aligned px of the faceset face
    aligned_to_source: np.ndarray | None = None  # FaceMeta.inverse (2x3)
    aligned_size: int = 0  # FaceMeta.size
    xseg_mask: str | None = None  # FaceMeta.xseg_mask (from 'facelab mask apply'), for mask mode xseg-dst
    path: Path | None = None  # the faceset file, named by errors

    @property
    def has_stored_mask(self) -> bool:
        return any(len(p.get("points", [])) >= 3 for p in self.polygons)


def uses_stored(mask_mode: str) -> bool:
    return "stored" in mask_mode.split("*")


def require_mask_model(mask_mode: str, mask_model: str | None) -> None:
    if xseg.uses_xseg_prd(mask_mode) and not mask_model:
        raise FacelabError(
            f"mask mode {mask_mode!r} runs a mask model on the swapped face: give --mask-model MASK_MODEL "
            "(a folder from 'facelab mask train')"
        )


def check_mask_sources(mask_mode: str, mask_model: str | None, faceset: str | Path | None) -> None:
    """One line, before anything is read, for an xseg mask mode without what it needs."""
    require_mask_model(mask_mode, mask_model)
    if xseg.uses_xseg_dst(mask_mode) and faceset is None:
        raise FacelabError(
            f"mask mode {mask_mode!r} needs --faceset (xseg-dst is the mask stored with each dst face by "
            "'facelab mask apply')"
        )


def check_stored_xseg(mask_mode: str, faceset: str | Path, faces: Iterable[PlannedFace]) -> None:
    """xseg-dst needs a stored mask on every dst face: one line naming the faceset, how many lack one, the first
    such file and the command that stores them."""
    if not xseg.uses_xseg_dst(mask_mode):
        return
    faces = list(faces)
    lacking = [f for f in faces if f.xseg_mask is None]
    if lacking:
        first = f" (first: {lacking[0].path.name})" if lacking[0].path is not None else ""
        raise FacelabError(
            f"{faceset}: {len(lacking)} of {len(faces)} faces have no stored xseg mask{first}; mask mode "
            f"{mask_mode!r} needs one on every face: run 'facelab mask apply MASK_MODEL {faceset}'"
        )


def faces_from_faceset(
    faceset: str | Path,
    dst: str | Path,
    frames: int | None,
    size: tuple[int, int] | None,
    frame_names: list[str] | None = None,
) -> dict[int, list[PlannedFace]]:
    """Faces per frame index from a dst faceset made by ``facelab extract`` of ``dst``; refuses a faceset of
    another video (file name, frame size or frame range differ). For a frame folder, ``frame_names`` lists its
    files in sequence order and faces are matched to frames by source file name (as DFL does)."""
    by_frame: dict[int, list[tuple[int, PlannedFace]]] = {}
    dst = Path(dst)
    position = {n: i for i, n in enumerate(frame_names)} if frame_names is not None else None
    for path, meta in load_metas(faceset):
        source = Path(meta.source_file).name
        if position is not None:
            if source not in position:
                raise FacelabError(
                    f"{path}: face comes from {source}, which is not a frame in {dst} (dst and faceset do not match)"
                )
            index = position[source]
        elif meta.frame_index is None or source != dst.name:
            raise FacelabError(
                f"{path}: face comes from {source}, not from {dst.name} (dst video and faceset do not match)"
            )
        else:
            index = meta.frame_index
        if size is not None and tuple(meta.source_size) != tuple(size):
            raise FacelabError(
                f"{path}: made from {meta.source_size[0]}x{meta.source_size[1]} frames, {dst.name} "
                f"is {size[0]}x{size[1]} (dst video and faceset do not match)"
            )
        if frames is not None and index >= frames:
            raise FacelabError(f"{path}: frame {index} is past the end of {dst.name} ({frames} frames)")
        face = PlannedFace(
            meta.source_landmarks, list(meta.masks or []), meta.inverse, meta.size, meta.xseg_mask, Path(path)
        )
        by_frame.setdefault(index, []).append((meta.face_index, face))
    return {k: [f for _, f in sorted(v, key=lambda t: t[0])] for k, v in by_frame.items()}


class LiveFaces:
    """Faces found during the merge with the extraction stage's finder and smoothing (no faceset needed)."""

    def __init__(self, cfg: ExtractConfig | None = None) -> None:
        cfg = cfg or ExtractConfig()
        self.finder = FaceFinder(cfg.detector, cfg.landmarker, cfg.refine, cfg.min_face)
        self.smoother = LandmarkSmoother(cfg.smooth_min_cutoff, cfg.smooth_beta) if cfg.smooth else None

    def __call__(self, frame: Frame) -> list[np.ndarray]:
        faces = self.finder.find(frame.image)
        if self.smoother is None or frame.timestamp is None:
            return [f.points for f in faces]
        return self.smoother(frame.timestamp, [(f.box, f.points) for f in faces])


# --- one face ------------------------------------------------------------------------------------------------------


@dataclass
class _Job:
    landmarks: np.ndarray
    crop: np.ndarray  # model input, float32 RGB [0,1] (res, res, 3)
    motion: tuple[float, float] = (0.0, 0.0)  # face centre displacement since the previous frame, frame px
    stored: np.ndarray | None = None  # stored-polygon mask in crop space (mask mode "stored"), None = none stored
    xseg_dst: np.ndarray | None = None  # the stored xseg mask in crop space (xseg-dst modes)
    xseg_context: np.ndarray | None = None  # the dst frame's whole-face crop around the swapped face (xseg-prd modes)
    cfg: MergeConfig | None = None  # this frame's settings (``merge --settings``); None: the Merger's


@dataclass
class MergedFrame:
    """One dst frame after the merge: what ``merge`` writes and the contact sheet shows."""

    frame: Frame  # the dst frame as decoded (its image untouched)
    image: np.ndarray  # uint8 RGB with the faces swapped
    mask: np.ndarray | None  # float32 (H, W) blend mask in frame space, max over faces; None unless asked for
    faces: int  # faces swapped in this frame


# --- the model: torch or onnxruntime -------------------------------------------------------------------------------

RUNTIMES = ("torch", "onnxruntime")
EXPORTED_SUFFIXES = (".onnx", ".dfm")


class Predictor(Protocol):
    """What merge runs faces through. ``crops``: float32 (N, res, res, 3) RGB in [0, 1], cropped as ``face_type``
    -> (swapped face (N, res, res, 3) RGB, swap mask (N, res, res), dst mask (N, res, res)), float32 in [0, 1]."""

    face_type: FaceType
    res: int

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


class TorchPredictor:
    """A trained SAEHD in torch (``--runtime torch``): bf16 where native unless ``precision`` says fp32.

    In bf16 the predictor runs its own copy of the model with bf16 weights (the caller's model is left as it was).
    The outputs are bf16 autocast's to one bf16 step (every layer runs in bf16 either way; tested), without
    autocast casting every weight again on every call (its cache lasts one autocast block): 82 M parameters per
    batch for liae-ud@128."""

    def __init__(
        self, model: SAEHD, model_cfg: ModelConfig, precision: str = "auto", device: torch.device | None = None
    ) -> None:
        self.face_type = FaceType.parse(model_cfg.face_type)
        self.res = model_cfg.resolution
        self.device = device or next(model.parameters()).device
        self.dtype = autocast_dtype(precision, self.device) or torch.float32
        model = model.to(memory_format=torch.channels_last)
        self.model = copy.deepcopy(model).to(self.dtype) if self.dtype != torch.float32 else model

    @torch.no_grad()
    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2))).to(self.device, self.dtype)
        face, prd, dst = self.model.swap(x.contiguous(memory_format=torch.channels_last))
        as_np = lambda t: t.float().clamp(0, 1).cpu().numpy()  # noqa: E731
        return as_np(face).transpose(0, 2, 3, 1), as_np(prd)[:, 0], as_np(dst)[:, 0]


class OnnxPredictor:
    """An exported model run by onnxruntime (``--runtime onnxruntime``, CPU, fp32): facelab's ``.onnx`` (NCHW RGB
    crops of the face type in its metadata) or DFL's ``.dfm`` (NHWC BGR whole-face crops, DFL's output order)."""

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        import onnxruntime as ort

        path = Path(path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime's own exception types: not ONNX, truncated, unsupported
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise FacelabError(f"{path}: not a loadable ONNX model ({why[:200]})") from e
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        meta = self.session.get_modelmeta().custom_metadata_map
        self.dfm = "in_face" in inputs[0].name
        shape = inputs[0].shape
        res = shape[1] if self.dfm else shape[2] if len(shape) == 4 else None
        if len(outputs) != 3 or not isinstance(res, int) or (self.dfm and shape[1:] != [res, res, 3]):
            raise FacelabError(
                f"{path}: not a swap model from 'facelab export' (inputs {[i.name for i in inputs]}, "
                f"{len(outputs)} outputs)"
            )
        if not self.dfm and shape[1:] != [3, res, res]:
            raise FacelabError(f"{path}: input {inputs[0].name} is {shape}, not N x 3 x R x R")
        self.input = inputs[0].name
        self.res = res
        face_type = FaceType.WHOLE_FACE.value if self.dfm else meta.get("facelab.face_type")
        if face_type is None:
            raise FacelabError(f"{path}: no facelab.face_type in its metadata (export it with 'facelab export')")
        self.face_type = FaceType.parse(face_type)
        self.archi = meta.get("facelab.archi", "dfm" if self.dfm else "onnx")

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        crops = np.asarray(crops, np.float32)
        if self.dfm:  # RGB -> BGR, NHWC; outputs (dst mask, face BGR, swap mask)
            dst, face, prd = self.session.run(None, {self.input: np.ascontiguousarray(crops[..., ::-1])})
            face = face[..., ::-1]
            prd, dst = prd[..., 0], dst[..., 0]
        else:
            face, prd, dst = self.session.run(None, {self.input: np.ascontiguousarray(crops.transpose(0, 3, 1, 2))})
            face, prd, dst = face.transpose(0, 2, 3, 1), prd[:, 0], dst[:, 0]
        clip = lambda a: np.clip(a, 0, 1).astype(np.float32, copy=False)  # noqa: E731
        return clip(face), clip(prd), clip(dst)


def check_runtime(runtime: str, model: str | Path) -> None:
    """One line, before anything is read, for an unknown runtime or a model of the other runtime's kind."""
    if runtime not in RUNTIMES:
        raise FacelabError(f"unknown runtime {runtime!r} (choose from {', '.join(RUNTIMES)})")
    exported = Path(model).suffix.lower() in EXPORTED_SUFFIXES
    if runtime == "torch" and exported:
        raise FacelabError(f"{model}: an exported model; run it with --runtime onnxruntime (torch needs the folder)")
    if runtime == "onnxruntime" and not exported:
        raise FacelabError(
            f"{model}: --runtime onnxruntime runs an exported .onnx or .dfm file "
            f"(facelab export --model DIR -o swap.onnx), not a model folder"
        )
    if runtime == "onnxruntime" and not Path(model).is_file():
        raise FacelabError(f"{model}: no such file")


def load_predictor(model: str | Path, runtime: str = "torch", precision: str = "auto") -> tuple[Predictor, str]:
    """The predictor for ``--model`` under ``runtime`` and the model id merge tags the video with: a model folder
    for torch, an exported ``.onnx`` / ``.dfm`` file for onnxruntime."""
    check_runtime(runtime, model)
    name = Path(model).resolve().name
    if runtime == "onnxruntime":
        p = OnnxPredictor(model)
        return p, f"{p.archi}@{p.res}:{name}"
    m, mcfg = load_model(model)
    return TorchPredictor(m, mcfg, precision), f"{mcfg.archi}@{mcfg.resolution}:{name}"


class Merger:
    """A trained model (an SAEHD with its config, or any ``Predictor``) plus merge settings; ``merged_frames`` swaps
    the faces of a run of frames with it."""

    def __init__(
        self,
        model: SAEHD | Predictor,
        model_cfg: ModelConfig | None,
        cfg: MergeConfig,
        device: torch.device | None = None,
        mask_modes: Iterable[str] = (),
    ):
        """``mask_modes``: further mask modes some frames use (``merge --settings``); each is checked, and the
        mask model is loaded if any of them needs it."""
        self.cfg = cfg
        if isinstance(model, SAEHD):
            if model_cfg is None:
                raise TypeError("an SAEHD model needs its ModelConfig")
            model = TorchPredictor(model, model_cfg, cfg.precision, device)
        self.predictor: Predictor = model
        self.face_type = model.face_type
        self.res = model.res
        self.only_like: IdentityFilter | None = None
        self.hull_fallbacks = 0  # faces merged with the hull because mode "stored" found no polygons on them
        modes = {cfg.mask_mode, *mask_modes}
        for mode in sorted(modes):
            if mode not in blend.MASK_MODES:
                raise FacelabError(f"unknown mask mode {mode!r} (choose from {', '.join(blend.MASK_MODES)})")
        self.mask_model: MaskModel | None = None
        prd_modes = sorted(m for m in modes if xseg.uses_xseg_prd(m))
        if prd_modes:
            require_mask_model(prd_modes[0], cfg.mask_model)
            where = getattr(model, "device", None) or device or "cpu"
            self.mask_model = load_mask_model(cfg.mask_model, where)

    def crop(self, frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        m = transform_matrix(landmarks, self.res, self.face_type)
        crop = cv2.warpAffine(frame, m, (self.res, self.res), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        return crop.astype(np.float32) / 255.0

    def stored_mask(self, face: PlannedFace) -> np.ndarray | None:
        """The face's stored polygons (include minus exclude) as a float32 (res, res) mask in the model's crop, or
        None when it has none. Rasterised in the faceset face's own aligned square, then warped aligned -> source
        (``FaceMeta.inverse``) -> model crop: the faceset may use another face type and size than the model."""
        if not face.has_stored_mask or face.aligned_to_source is None:
            return None
        n = face.aligned_size
        aligned = polygon_mask((n, n), face.polygons)
        m = xseg.aligned_to_crop(face.aligned_to_source, face.landmarks, self.res, self.face_type)
        return cv2.warpAffine(
            aligned, m, (self.res, self.res), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )

    def xseg_dst(self, face: PlannedFace) -> np.ndarray:
        """xseg-dst: the face's stored xseg mask in the model's crop; one line naming its file if it has none."""
        where = face.path or "a dst face"
        if face.xseg_mask is None or face.aligned_to_source is None:
            raise FacelabError(f"{where}: no stored xseg mask (run 'facelab mask apply MASK_MODEL' on its faceset)")
        try:
            return xseg.stored_xseg(
                face.xseg_mask, face.aligned_size, face.aligned_to_source, face.landmarks, self.res, self.face_type
            )
        except FacelabError as e:
            raise FacelabError(f"{where}: {e}") from e

    def xseg_prd(self, jobs: list[_Job], faces: np.ndarray) -> list[np.ndarray | None]:
        """xseg-prd: the mask model on each swapped face whose frame uses it (one batch), masks in the model's
        crop; None for the others (their frames' mask modes do not read it)."""
        used = [k for k, j in enumerate(jobs) if j.xseg_context is not None]
        out: list[np.ndarray | None] = [None] * len(jobs)
        if self.mask_model is None or not used:
            return out
        mats = [xseg.crop_to_xseg(jobs[k].landmarks, self.res, self.face_type) for k in used]
        contexts, landmarks = [jobs[k].xseg_context for k in used], [jobs[k].landmarks for k in used]
        masks = xseg.predicted_xseg(self.mask_model, contexts, faces[used], mats, self.res, landmarks)
        for k, m in zip(used, masks):
            out[k] = m
        return out

    def predict(self, crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.predictor(np.stack(crops))

    def paste(
        self,
        frame: np.ndarray,
        landmarks: np.ndarray,
        crop: np.ndarray,
        face: np.ndarray,
        prd: np.ndarray,
        dst: np.ndarray,
        motion: tuple[float, float] = (0.0, 0.0),
        frame_mask: np.ndarray | None = None,
        stored: np.ndarray | None = None,
        xseg_prd: np.ndarray | None = None,
        xseg_dst: np.ndarray | None = None,
        cfg: MergeConfig | None = None,
    ) -> np.ndarray:
        """``frame`` (uint8 RGB) with one predicted face blended in; ``motion`` (frame px) drives motion blur.
        ``cfg``: this frame's settings (default: the Merger's).
        ``frame_mask`` (float32 H x W), if given, receives the blend mask in frame space (max over faces).
        ``stored``: the face's stored mask in crop space (``stored_mask``); mode "stored" uses the landmark hull
        for a face without one (logged once per Merger). ``xseg_prd`` / ``xseg_dst``: the xseg modes' masks in crop
        space (from the methods of the same names)."""
        cfg, res = cfg or self.cfg, self.res
        fallback = uses_stored(cfg.mask_mode) and stored is None
        if fallback:
            self.hull_fallbacks += 1
            if self.hull_fallbacks == 1:
                log.warning("mask mode 'stored': some faces have no stored mask polygons; those use the landmark hull")
        hull = None
        if "hull" in cfg.mask_mode or fallback:
            hull = hull_mask((res, res), _to_crop(landmarks, res, self.face_type))
        mask = blend.combine_masks(
            cfg.mask_mode,
            hull=hull,
            prd=prd,
            dst=dst,
            stored=hull if fallback else stored,
            xseg_prd=xseg_prd,
            xseg_dst=xseg_dst,
        )
        face = blend.color_match(face, crop, cfg.color, mask, mask)
        if cfg.blend == "hist-match":
            face = blend.hist_match(face, crop, mask)
        if cfg.sharpen != "none" and cfg.sharpen_amount:
            face = blend.sharpen(face, cfg.sharpen, cfg.sharpen_amount)
        big = 4 * res  # DFL processes masks at 4x the model resolution; erode/blur are pixels there
        mask4 = blend.process_mask(mask, res, cfg.erode, cfg.blur)
        face4 = cv2.resize(np.clip(face, 0, 1), (big, big), interpolation=cv2.INTER_CUBIC)
        to_frame = blend.face_to_frame_matrix(landmarks, big, self.face_type, cfg.face_scale)
        if cfg.motion_blur and any(motion):  # at 4x, like the mask: kernel lengths in the pixels a user sees
            frame_to_face = np.linalg.inv(np.vstack([to_frame, [0, 0, 1]]))[:2, :2]
            face4 = blend.motion_blur(face4, mask4, tuple(frame_to_face @ np.asarray(motion)), cfg.motion_blur)
        if frame_mask is not None:
            placed = blend.warp_mask(mask4, to_frame, frame.shape)
            if placed is not None:
                roi, values = placed
                np.maximum(frame_mask[roi], values, out=frame_mask[roi])
        if cfg.blend == "seamless":
            return blend.seamless_paste(frame, face4, mask4, to_frame)
        return blend.paste(frame, face4, mask4, to_frame)


def pasted_region(
    landmarks: np.ndarray,
    frame_shape: tuple[int, ...],
    res: int,
    face_type: FaceType | str,
    face_scale: int = 0,
    margin: int = 2,
) -> np.ndarray:
    """bool (H, W): where pasting this face can change pixels - the model's crop square mapped into the frame,
    grown by ``margin`` px for interpolation. Everything outside stays bit-identical to the dst frame."""
    big = 4 * res
    quad = np.array([[0, 0], [big, 0], [big, big], [0, big]], float)
    to_frame = blend.face_to_frame_matrix(landmarks, big, face_type, face_scale)
    region = np.zeros(frame_shape[:2], np.uint8)
    cv2.fillConvexPoly(region, np.round(quad @ to_frame[:, :2].T + to_frame[:, 2]).astype(np.int32), 1)
    k = 2 * margin + 1
    return cv2.dilate(region, np.ones((k, k), np.uint8)).astype(bool)


def _to_crop(landmarks: np.ndarray, res: int, face_type: FaceType) -> np.ndarray:
    m = transform_matrix(landmarks, res, face_type)
    return landmarks @ m[:, :2].T + m[:, 2]


# --- the video -----------------------------------------------------------------------------------------------------


def merge(
    dst: str | Path,
    model_dir: str | Path,
    output: str | Path,
    cfg: MergeConfig | None = None,
    faceset: str | Path | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    mask_output: str | Path | None = None,
    fps: float | None = None,
    settings: MergeSettings | None = None,
) -> MergeSummary:
    """Swap every face of ``dst`` (a video, or a folder of frames in natural name order) with the model in
    ``model_dir`` (``cfg.runtime`` torch: a model folder; onnxruntime: a file from ``facelab export``) and write ``output`` (a video file, or a folder for a PNG sequence); ``mask_output`` (same choice)
    gets each frame's blend mask. ``fps`` is the frame rate of a frame folder (default 30; a video keeps its own
    timing and audio, a folder has no audio). ``settings`` (``merge --settings``, ``merge/settings.py``) gives frames
    their own blending settings over ``cfg``'s. Settings are saved beside the output as ``<output>.merge.json``."""
    cfg = cfg or MergeConfig()
    if settings is not None:
        cfg = settings.settings_for_frame(-1, cfg)  # the base settings (frame -1 is in no range)
    modes = sorted(settings.mask_modes(cfg) if settings is not None else {cfg.mask_mode})
    dst, output = Path(dst), Path(output)
    check_runtime(cfg.runtime, model_dir)
    refuse_overlap(merge_inputs(dst, model_dir, faceset, cfg), {"-o": output, "--mask-output": mask_output})
    if any(uses_stored(m) for m in modes) and faceset is None:
        # found-on-the-fly faces carry no polygons; failing now beats a whole run of silent hull fallbacks
        raise FacelabError(
            "stored masks need --faceset (mask mode 'stored' uses the polygons saved with the dst faceset's faces)"
        )
    for mode in modes:
        check_mask_sources(mode, cfg.mask_model, faceset)
    seq, info, rate = _open_dst(dst, fps, output, mask_output)
    template = None if seq is not None else dst  # a video lends the writers its timing and audio
    frame_names = [p.name for p in seq.paths] if seq is not None else None
    n_frames = len(seq) if seq is not None else info.frames
    predictor, model_id = load_predictor(model_dir, cfg.runtime, cfg.precision)
    merger = Merger(predictor, None, cfg, mask_modes=modes)
    size = (seq.width, seq.height) if seq is not None else (info.width, info.height) if info.width else None
    planned = faces_from_faceset(faceset, dst, n_frames, size, frame_names) if faceset else None
    if planned is not None:
        for mode in modes:
            check_stored_xseg(mode, faceset, (f for fs in planned.values() for f in fs))
    live = None if planned is not None else LiveFaces()
    if cfg.only_like:
        merger.only_like = IdentityFilter(cfg.only_like, 0.6, live.finder if live else FaceFinder())
    summary = MergeSummary(str(output), frames_declared=n_frames)
    t0 = time.perf_counter()
    tag = synthetic_tag(model_id, {"dst": dst.name})
    decoded = DecodeCheck()  # a dst that ends before its declared frame count is reported once its frames are out
    frames = iter_sequence(seq, rate) if seq is not None else iter_frames(dst, check=decoded)

    def faces_of(frame: Frame) -> list[PlannedFace]:
        return planned.get(frame.index, []) if planned is not None else [PlannedFace(lm) for lm in live(frame)]

    with contextlib.ExitStack() as stack:
        w = stack.enter_context(open_writer(output, template, crf=cfg.crf, metadata=tag, fps=rate))
        mw = None
        if mask_output is not None:
            mw = stack.enter_context(
                open_writer(mask_output, template, crf=cfg.crf, metadata=tag, copy_audio=False, fps=rate)
            )
        # one encoder thread: x264 and the RGB->YUV conversion overlap the next frames' prediction (order is kept)
        encoder = stack.enter_context(ThreadPoolExecutor(1))
        pending: deque[Future] = deque()
        faced = ((f, faces_of(f)) for f in prefetch(frames))
        per_frame = None if settings is None else lambda i: settings.settings_for_frame(i, cfg)
        for done in merged_frames(faced, merger, with_masks=mw is not None, settings=per_frame):
            pending.append(encoder.submit(w.write, done.image, done.frame.timestamp))
            if mw is not None and done.mask is not None:
                gray = (done.mask * 255 + 0.5).astype(np.uint8)
                pending.append(encoder.submit(mw.write, np.repeat(gray[..., None], 3, axis=2), done.frame.timestamp))
            while pending and (pending[0].done() or len(pending) > 8):
                pending.popleft().result()
            summary.frames += 1
            summary.faces_swapped += done.faces
            summary.frames_without_face += int(done.faces == 0)
            if progress:
                progress(summary.frames, n_frames)
        while pending:
            pending.popleft().result()
    summary.seconds = time.perf_counter() - t0
    summary.faces_hull_fallback = merger.hull_fallbacks
    settings = {
        "dst": str(dst),
        "model": str(model_dir),
        "faceset": str(faceset) if faceset else None,
        "fps": rate,
        "merge": asdict(cfg),
        "settings": settings.to_json() if settings is not None else None,
        "facelab_version": __version__,
        "model_id": model_id,
    }
    write_atomic(Path(str(output).rstrip("/") + ".merge.json"), json.dumps(settings, indent=1).encode())
    if decoded.short:
        of = f" of {decoded.declared}" if decoded.declared is not None else ""
        raise MediaError(f"{decoded.message(dst)}; merge wrote {summary.frames}{of} frames to {output}")
    return summary


def merge_inputs(
    dst: Path, model_dir: str | Path, faceset: str | Path | None, cfg: MergeConfig
) -> dict[str, str | Path | None]:
    """What a merge reads, named for ``refuse_overlap``'s messages (no output may replace or enter them)."""
    return {
        media_label("dst", dst): dst,
        "model folder": model_dir,
        "dst faceset": faceset,
        "reference photo": cfg.only_like,
        "mask model": cfg.mask_model,
    }


def _open_dst(
    dst: Path, fps: float | None, *outputs: Path | str | None
) -> tuple[FrameSequence | None, MediaInfo | None, float | None]:
    """(frame sequence, None, its rate) for a frame folder, which runs at ``fps`` or 30; (None, probe, None) for
    a video, which keeps its own timing. Fails with one line on anything else, before the model is loaded."""
    if fps is not None and fps <= 0:
        raise FacelabError(f"--fps must be > 0, got {fps}")
    if not dst.exists():
        raise MediaError(f"{dst}: no such file or folder")
    if not dst.is_dir():
        info = probe(dst)
        if info.kind != "video":
            raise FacelabError(f"{dst}: merge needs a video or a folder of frames (got {info.kind})")
        if fps is not None:
            log.warning("--fps applies to a folder of frames; %s keeps its own frame rate", dst.name)
        return None, info, None
    seq = frame_sequence(dst)
    if fps is None:
        fps = DEFAULT_SEQUENCE_FPS
        if any(o is not None and _is_video_path(o) for o in outputs):
            log.warning("%s: a folder of frames has no frame rate; the video is written at 30 fps (set --fps)", dst)
    return seq, None, float(fps)


def _is_video_path(path: Path | str) -> bool:
    """What ``open_writer`` will treat as a video file (the rest become PNG folders)."""
    p = Path(path)
    return not (str(path).endswith(("/", os.sep)) or p.is_dir() or not p.suffix)


def merged_frames(
    faced: Iterable[tuple[Frame, list[PlannedFace]]],
    merger: Merger,
    with_masks: bool = False,
    consecutive: bool = True,
    settings: Callable[[int], MergeConfig] | None = None,
) -> Iterator[MergedFrame]:
    """Frames in order with their faces swapped; faces are predicted ``batch`` at a time across frames.

    ``faced`` pairs each frame with the faces to swap in it (``merger``'s ``only_like`` and ``every_face`` pick
    among them). ``with_masks`` adds each frame's blend mask. ``consecutive=False`` for frames that do not follow
    each other (stills of a contact sheet): motion blur then has no previous frame to compare with. ``settings``
    (frame index -> MergeConfig, from ``merge --settings``) gives each frame its own blending settings; the faces,
    their motion and the model's prediction never depend on them.
    """
    window: list[tuple[Frame, list[_Job]]] = []
    pending = 0
    previous: list[np.ndarray] = []  # face centres of the previous frame (for motion blur)
    # One window is predicted in a thread while the one before it is pasted and the next one cropped, so the
    # model's calls and the per-frame image work overlap on the cores (the same batches: results do not change).
    with ThreadPoolExecutor(1, thread_name_prefix="facelab-predict") as pool:
        ahead: tuple[list[tuple[Frame, list[_Job]]], Future] | None = None
        for frame, faces in faced:
            faces = chosen_faces(merger, frame.image, faces)
            cfg = settings(frame.index) if settings is not None else None
            jobs = frame_jobs(merger, frame.image, faces, previous, cfg)
            if consecutive:
                previous = face_centres(faces)
            window.append((frame, jobs))
            pending += len(jobs)
            if pending >= merger.cfg.batch:
                submitted = (window, pool.submit(_predict, window, merger))
                if ahead is not None:
                    yield from _paste(*ahead, merger, with_masks)
                ahead, window, pending = submitted, [], 0
        if ahead is not None:
            yield from _paste(*ahead, merger, with_masks)
        yield from _paste(window, pool.submit(_predict, window, merger), merger, with_masks)


def chosen_faces(merger: Merger, image: np.ndarray, faces: list[PlannedFace]) -> list[PlannedFace]:
    """The faces of a frame that are swapped: ``only_like``'s person, and only the first unless ``every_face``."""
    if merger.only_like is not None:  # swap only the chosen person; other faces stay as they are
        faces = [f for f in faces if merger.only_like.matches(image, f.landmarks)]
    return faces if merger.cfg.every_face else faces[:1]


def face_centres(faces: list[PlannedFace]) -> list[np.ndarray]:
    """What the next frame's motion blur compares with."""
    return [f.landmarks.mean(0) for f in faces]


def frame_jobs(
    merger: Merger,
    image: np.ndarray,
    faces: list[PlannedFace],
    previous: list[np.ndarray],
    cfg: MergeConfig | None = None,
) -> list[_Job]:
    """One frame's faces (already chosen) made ready for the model and the paste, under its settings ``cfg``
    (default: the Merger's); ``previous``: the previous frame's face centres (``face_centres``)."""
    mode = (cfg or merger.cfg).mask_mode
    stored, xdst = uses_stored(mode), xseg.uses_xseg_dst(mode)
    xprd = merger.mask_model is not None and xseg.uses_xseg_prd(mode)
    return [
        _Job(
            f.landmarks,
            merger.crop(image, f.landmarks),
            _motion(f.landmarks, previous),
            merger.stored_mask(f) if stored else None,
            merger.xseg_dst(f) if xdst else None,
            xseg.xseg_context(image, f.landmarks) if xprd else None,
            cfg,
        )
        for f in faces
    ]


def paste_jobs(
    merger: Merger,
    image: np.ndarray,
    jobs: list[_Job],
    preds: tuple[np.ndarray, np.ndarray, np.ndarray],
    xprd: list[np.ndarray | None],
    frame_mask: np.ndarray | None = None,
) -> np.ndarray:
    """``image`` with each job's predicted face (``preds[.][k]``, ``xprd[k]`` for job k) pasted in order."""
    out = image
    for k, j in enumerate(jobs):
        out = merger.paste(
            out,
            j.landmarks,
            j.crop,
            preds[0][k],
            preds[1][k],
            preds[2][k],
            j.motion,
            frame_mask,
            j.stored,
            xprd[k],
            j.xseg_dst,
            j.cfg,
        )
    return out


def _motion(landmarks: np.ndarray, previous: list[np.ndarray]) -> tuple[float, float]:
    """Displacement of this face's centre from the nearest face centre of the previous frame (0 if none near)."""
    if not previous:
        return (0.0, 0.0)
    c = landmarks.mean(0)
    d = min((c - p for p in previous), key=lambda v: float(np.hypot(*v)))
    size = float(np.ptp(landmarks[:, 0]))
    return (float(d[0]), float(d[1])) if np.hypot(*d) < size else (0.0, 0.0)


_Predicted = tuple[tuple[np.ndarray, np.ndarray, np.ndarray] | None, list[np.ndarray | None]]


def _predict(window: list[tuple[Frame, list[_Job]]], merger: Merger) -> _Predicted:
    """One model call for every face in ``window`` (None without faces) and their xseg-prd masks."""
    jobs = [j for _, js in window for j in js]
    preds = merger.predict([j.crop for j in jobs]) if jobs else None
    return preds, merger.xseg_prd(jobs, preds[0]) if preds is not None else []


def _paste(
    window: list[tuple[Frame, list[_Job]]], predicted: Future, merger: Merger, with_masks: bool
) -> Iterator[MergedFrame]:
    """Each frame of ``window`` with its faces pasted in order, once ``predicted`` (``_predict``'s) is in."""
    preds, xprd = predicted.result()
    k = 0
    for frame, js in window:
        fmask = np.zeros(frame.image.shape[:2], np.float32) if with_masks else None
        n = len(js)
        out = frame.image
        if n:
            mine = (preds[0][k : k + n], preds[1][k : k + n], preds[2][k : k + n])
            out = paste_jobs(merger, frame.image, js, mine, xprd[k : k + n], fmask)
        k += n
        yield MergedFrame(frame, out, fmask, n)
