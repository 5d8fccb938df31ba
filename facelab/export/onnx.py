"""ONNX export of a swap model's dst->src path: DFL's ``.dfm`` layout (for DeepFaceLive and FaceFusion) or a plain
ONNX file in facelab's own conventions (what ``facelab merge --runtime onnxruntime`` runs).

``.dfm`` (what DFL's SAEHD ``export_dfm`` writes and its consumers check; one ONNX protobuf, no external data):

- input 0 ``in_face:0``: float32 NHWC ``[batch, R, R, 3]``, BGR in [0, 1], a DFL *whole-face* crop of static
  square size R (consumers read R from the shape and crop whole face whatever the model was trained on);
- outputs, read by position: ``out_face_mask:0`` (the dst face's mask ``[batch, R, R, 1]``), ``out_celeb_face:0``
  (the swapped face, BGR ``[batch, R, R, 3]``), ``out_celeb_face_mask:0`` (the swapped face's mask), all in [0, 1].

A model of another face type gets the crop change inside the graph: a constant ``grid_sample`` resamples the
whole-face input to the model's crop, and the outputs back to the whole-face frame (outside the model's crop:
masks 0, face = the input). The two crops differ by a fixed similarity for every face (``facetype.py`` builds both
from one unit-face square: only the padding and the whole-face forehead shift differ), computed once on a canonical
frontal face; for ``head`` (whose crop shifts with yaw) it is the frontal-face crop.

Plain ONNX (``--format onnx``): input ``dst`` NCHW RGB in [0, 1] ``[batch, 3, R, R]`` of the model's own face type;
outputs ``face`` ``[batch, 3, R, R]``, ``mask_swap`` and ``mask_dst`` ``[batch, 1, R, R]`` (``SAEHD.swap``'s,
unclamped), with ``facelab.face_type`` / ``facelab.resolution`` / ``facelab.archi`` in the metadata.

Written with torch's TorchScript-based exporter (``dynamo=False``): the torch.export-based default needs
onnxscript, and the graph has no control flow for it to gain on. Opset 17 (GridSample needs 16; DeepFaceLive's
onnxruntime 1.15 reads up to 19), IR version capped at 8 for the same reader.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facelab.geometry.facetype import MEAN_FACE_17_67, FaceType, transform_matrix
from facelab.geometry.umeyama import invert_affine
from facelab.io.atomic import write_atomic
from facelab.models.saehd import SAEHD, SwapModule

OPSET = 17
MAX_IR_VERSION = 8  # onnxruntime 1.15 (DeepFaceLive's pin) reads IR <= 8 / opset <= 19
DFM_INPUT = "in_face:0"
DFM_OUTPUTS = ("out_face_mask:0", "out_celeb_face:0", "out_celeb_face_mask:0")
ONNX_INPUT = "dst"
ONNX_OUTPUTS = ("face", "mask_swap", "mask_dst")


def canonical_landmarks(scale: float = 200.0, offset: float = 300.0) -> np.ndarray:
    """68 frame-px landmarks of DFL's mean face, frontal: points 17..67 are the mean face itself; the jaw (0..16,
    which only the head crop reads, for yaw) is placed symmetrically about the nose bridge so the yaw is 0."""
    unit = np.zeros((68, 2))
    unit[17:] = MEAN_FACE_17_67
    for k in range(9):
        nose_x = unit[27 + min(k, 3), 0]
        y = 0.35 + 0.08 * k
        unit[k] = (nose_x - 0.5 + 0.02 * k, y)
        unit[16 - k] = (nose_x + 0.5 - 0.02 * k, y)
    return unit * scale + offset


def crop_change(src_type: FaceType | str, dst_type: FaceType | str, size: int) -> np.ndarray:
    """2x3 affine mapping pixels of a ``size`` px ``src_type`` crop to the ``size`` px ``dst_type`` crop of the same
    face (pixel centres at integer coordinates, as ``cv2.warpAffine`` and ``transform_matrix`` use)."""
    lm = canonical_landmarks()
    to_src = np.vstack([transform_matrix(lm, size, src_type), [0, 0, 1]])
    to_dst = np.vstack([transform_matrix(lm, size, dst_type), [0, 0, 1]])
    return (to_dst @ np.linalg.inv(to_src))[:2]


def sampling_grid(out_to_in: np.ndarray, size: int) -> Tensor:
    """``grid_sample`` grid [1, size, size, 2] (align_corners=False) that reads, for each output pixel, the input
    pixel ``out_to_in`` maps it to; input and output are ``size`` px squares."""
    ii = np.arange(size, dtype=np.float64)
    xs, ys = np.meshgrid(ii, ii)
    pts = np.stack([xs, ys], -1) @ out_to_in[:, :2].T + out_to_in[:, 2]
    norm = (2.0 * pts + 1.0) / size - 1.0
    return torch.from_numpy(norm[None].astype(np.float32))


class DfmSwap(nn.Module):
    """``model.swap`` in DFL's ``.dfm`` conventions: whole-face NHWC BGR [0, 1] in -> (dst mask, swapped face BGR,
    swapped face mask), NHWC, clamped to [0, 1]; the crop change to the model's face type happens inside."""

    def __init__(self, model: SAEHD, face_type: FaceType | str) -> None:
        super().__init__()
        self.model = model
        res = model.resolution
        face_type = FaceType.parse(face_type) if isinstance(face_type, str) else face_type
        self.resample = face_type != FaceType.WHOLE_FACE
        wf_to_model = crop_change(FaceType.WHOLE_FACE, face_type, res)
        # model crop pixel -> whole-face pixel (to read the input), whole-face pixel -> model crop pixel (outputs)
        self.register_buffer("grid_in", sampling_grid(invert_affine(wf_to_model), res), persistent=False)
        grid_out = sampling_grid(wf_to_model, res)
        self.register_buffer("grid_out", grid_out, persistent=False)
        ones = torch.ones(1, 1, res, res)  # how much of each whole-face pixel the model's crop covers (0..1)
        inside = F.grid_sample(ones, grid_out, mode="bilinear", padding_mode="zeros", align_corners=False)
        self.register_buffer("inside", inside, persistent=False)

    def forward(self, in_face: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        rgb = in_face.permute(0, 3, 1, 2).flip(1)  # NHWC BGR -> NCHW RGB
        x = rgb
        if self.resample:
            n = rgb.shape[0]
            x = F.grid_sample(rgb, self.grid_in.expand(n, -1, -1, -1), "bilinear", "border", align_corners=False)
        face, mask_swap, mask_dst = self.model.swap(x)
        face, mask_swap, mask_dst = face.clamp(0, 1), mask_swap.clamp(0, 1), mask_dst.clamp(0, 1)
        if self.resample:
            n = rgb.shape[0]
            grid = self.grid_out.expand(n, -1, -1, -1)
            back = lambda t: F.grid_sample(t, grid, "bilinear", "zeros", align_corners=False)  # noqa: E731
            face = back(face) + (1 - self.inside) * rgb  # outside the model's crop the face is the input
            mask_swap, mask_dst = back(mask_swap), back(mask_dst)
        nhwc = lambda t: t.permute(0, 2, 3, 1)  # noqa: E731
        return nhwc(mask_dst), nhwc(face.flip(1)), nhwc(mask_swap)


def onnx_bytes(model: SAEHD, face_type: str, archi: str, fmt: str) -> bytes:
    """The serialized ONNX model of ``model``'s swap, ``fmt`` "dfm" or "onnx" (see the module docstring)."""
    res = model.resolution
    param = next(model.parameters())
    if fmt == "dfm":
        module: nn.Module = DfmSwap(model, face_type)
        example = torch.rand(1, res, res, 3, dtype=param.dtype, device=param.device)
        names, outputs = [DFM_INPUT], list(DFM_OUTPUTS)
    else:
        module = SwapModule(model)
        example = torch.rand(1, 3, res, res, dtype=param.dtype, device=param.device)
        names, outputs = [ONNX_INPUT], list(ONNX_OUTPUTS)
    was_training = model.training
    model.eval()
    buf = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated upstream, still supported
            torch.onnx.export(
                module,
                (example,),
                buf,
                dynamo=False,
                opset_version=OPSET,
                input_names=names,
                output_names=outputs,
                dynamic_axes={n: {0: "batch"} for n in names + outputs},
                do_constant_folding=True,
            )
    finally:
        model.train(was_training)
    proto = onnx.load_from_string(buf.getvalue())
    # the tracer leaves some output dims symbolic (reshapes after the decoder); consumers read static R, C
    channels = (1, 3, 1) if fmt == "dfm" else (3, 1, 1)
    for out, c in zip(proto.graph.output, channels, strict=True):
        static = (res, res, c) if fmt == "dfm" else (c, res, res)
        dims = out.type.tensor_type.shape.dim
        dims[0].dim_param = "batch"
        for d, v in zip(dims[1:], static, strict=True):
            d.dim_value = v
    proto.ir_version = min(proto.ir_version, MAX_IR_VERSION)
    proto.producer_name = "facelab"
    meta = {"facelab.format": fmt, "facelab.archi": archi, "facelab.resolution": str(res)}
    meta["facelab.face_type"] = FaceType.WHOLE_FACE.value if fmt == "dfm" else str(FaceType.parse(face_type))
    if fmt == "dfm":
        meta["facelab.model_face_type"] = str(FaceType.parse(face_type))
    onnx.helper.set_model_props(proto, meta)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def export_swap_onnx(model: SAEHD, face_type: str, archi: str, path: str | Path, fmt: str = "onnx") -> int:
    """Write ``model``'s swap as ONNX (``fmt`` "onnx") or DFL's ``.dfm`` (``fmt`` "dfm") to ``path`` atomically;
    returns the bytes written."""
    data = onnx_bytes(model, face_type, archi, fmt)
    write_atomic(Path(path), data)  # one file, no external data: a .dfm is a single protobuf
    return len(data)
