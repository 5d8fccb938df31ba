"""``facelab export --format dfm|onnx`` and ``facelab merge --runtime onnxruntime``: onnxruntime gives the PyTorch
model's outputs on real faces (a model of another face type too, re-cropped inside the graph), the .dfm passes the
checks DeepFaceLive and FaceFusion make before they run one, bad input fails in one line and writes nothing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from facelab.config import ExtractConfig, MergeConfig, ModelConfig, TrainConfig
from facelab.demo import write_motion_clip
from facelab.export import export_model
from facelab.export.onnx import DfmSwap, crop_change
from facelab.extract.pipeline import extract
from facelab.faceset.index import load_metas
from facelab.geometry.facetype import FaceType, transform_matrix
from facelab.geometry.umeyama import invert_affine
from facelab.merge.pipeline import merge
from facelab.models.load import load_model
from facelab.train.loop import Trainer

TINY = dict(resolution=64, ae_dims=32, e_dims=16, d_dims=16, d_mask_dims=8)
MODELS = {  # the cpu-quick preset's DF on a full face (re-cropped inside the .dfm); LIAE on DFL's whole face
    "df_full": ModelConfig(archi="df-ud", face_type="full", **TINY),
    "liae_wf": ModelConfig(archi="liae-ud", face_type="whole_face", **TINY),
}
FAST = TrainConfig(batch=4, workers=0, precision="fp32", preview_every=0, autosave_minutes=1e9)


@pytest.fixture(scope="module")
def job(tmp_path_factory, hopper, astronaut):
    """Two tiny trained models, their .dfm and .onnx exports, and each package face with its landmarks."""
    root = tmp_path_factory.mktemp("export_dfm")
    faces = {}
    for name, img in (("hopper", hopper), ("astronaut", astronaut)):
        folder = root / f"imgs_{name}"
        folder.mkdir()
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        extract(folder, root / f"fs_{name}", ExtractConfig(size=128))
        (_, meta), *_ = load_metas(root / f"fs_{name}")
        faces[name] = (img, meta.source_landmarks)
    for key, mcfg in MODELS.items():
        Trainer(root / "fs_hopper", root / "fs_astronaut", root / key, mcfg, FAST).run(iterations=2)
        for fmt in ("dfm", "onnx"):
            export_model(root / key, root / f"{key}.{fmt}")  # format "auto": by the suffix
    return root, faces


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _crop(img: np.ndarray, landmarks: np.ndarray, res: int, face_type: str) -> np.ndarray:
    """What merge feeds the model: float32 RGB [0, 1] (res, res, 3)."""
    m = transform_matrix(landmarks, res, face_type)
    crop = cv2.warpAffine(img, m, (res, res), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return crop.astype(np.float32) / 255.0


@pytest.mark.parametrize("key", MODELS)
@pytest.mark.parametrize("face", ["hopper", "astronaut"])
def test_dfm_equals_the_pytorch_model_on_real_faces(job, key, face):
    root, faces = job
    img, lm = faces[face]
    model, mcfg = load_model(root / key)
    res = mcfg.resolution
    whole = _crop(img, lm, res, "whole_face")  # what DeepFaceLive / FaceFusion feed: whole face, BGR, batch 1
    bgr = np.ascontiguousarray(whole[None, ..., ::-1])
    got = _session(root / f"{key}.dfm").run(None, {"in_face:0": bgr})
    with torch.no_grad():
        want = [t.numpy() for t in DfmSwap(model, mcfg.face_type)(torch.from_numpy(bgr))]
    for g, w in zip(got, want, strict=True):
        assert np.abs(g - w).max() < 1e-3
    if mcfg.face_type == "whole_face":  # no crop change: exactly facelab's own swap of the crop merge makes
        with torch.no_grad():
            face_t, prd, dst = model.swap(torch.from_numpy(whole.transpose(2, 0, 1)[None]))
        assert np.abs(got[1][0, ..., ::-1] - face_t[0].clamp(0, 1).numpy().transpose(1, 2, 0)).max() < 1e-3
        assert np.abs(got[2][0, ..., 0] - prd[0, 0].clamp(0, 1).numpy()).max() < 1e-3
        assert np.abs(got[0][0, ..., 0] - dst[0, 0].clamp(0, 1).numpy()).max() < 1e-3


@pytest.mark.parametrize("face", ["hopper", "astronaut"])
def test_crop_change_inside_the_dfm_lands_where_facelab_crops(job, face):
    """The full-face model behind a .dfm: the graph reads the model's crop out of the whole-face input where
    facelab's geometry puts it, and writes the swap back through the inverse (outside it: masks 0, face = input)."""
    root, faces = job
    img, lm = faces[face]
    model, mcfg = load_model(root / "df_full")
    res = mcfg.resolution
    a = crop_change("whole_face", "full", res)  # whole-face px -> full-face px: one similarity for every face
    m_wf, m_full = transform_matrix(lm, res, "whole_face"), transform_matrix(lm, res, "full")
    assert np.abs(a[:, :2] @ m_wf[:, :2] - m_full[:, :2]).max() < 1e-9
    assert np.abs(a[:, :2] @ m_wf[:, 2] + a[:, 2] - m_full[:, 2]).max() < 1e-6
    whole = _crop(img, lm, res, "whole_face")
    wrap = DfmSwap(model, "full")
    x = torch.from_numpy(whole.transpose(2, 0, 1)[None].copy())
    inside_graph = F.grid_sample(x, wrap.grid_in, "bilinear", "border", align_corners=False)[0].numpy()
    linear = dict(flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    full = cv2.warpAffine(whole, a, (res, res), **linear)  # the same resampling, in OpenCV's pixel convention
    assert np.abs(inside_graph.transpose(1, 2, 0) - full).max() < 1e-4
    bgr = np.ascontiguousarray(whole[None, ..., ::-1])
    mask_dst, face_bgr, mask_swap = _session(root / "df_full.dfm").run(None, {"in_face:0": bgr})
    with torch.no_grad():
        own = [
            t[0].clamp(0, 1).numpy().transpose(1, 2, 0)
            for t in model.swap(torch.from_numpy(full.transpose(2, 0, 1)[None].copy()))
        ]

    def back(im: np.ndarray) -> np.ndarray:  # model crop -> whole face, zero outside (the graph's padding)
        return cv2.warpAffine(im, invert_affine(a), (res, res), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)

    inside = back(np.ones((res, res), np.float32))[..., None]
    assert np.abs(face_bgr[0, ..., ::-1] - (back(own[0]) + (1 - inside) * whole)).max() < 1e-3
    assert np.abs(mask_swap[0, ..., 0] - back(own[1][..., 0])).max() < 1e-3
    assert np.abs(mask_dst[0, ..., 0] - back(own[2][..., 0])).max() < 1e-3
    corner = (slice(0, 4), slice(0, 4))  # whole-face corners lie outside the full-face crop
    assert np.abs(face_bgr[0, ..., ::-1][corner] - whole[corner]).max() < 1e-3 and mask_swap[0][corner].max() < 1e-3
    # and it is facelab's own swap of the full-face crop it makes from the frame (up to resampling; a wrong
    # affine, e.g. none, is off by ~0.07 on these faces)
    frame_crop = _crop(img, lm, res, "full").transpose(2, 0, 1)[None].copy()
    with torch.no_grad():
        direct = model.swap(torch.from_numpy(frame_crop))[0][0].clamp(0, 1).numpy().transpose(1, 2, 0)
    read_back = cv2.warpAffine(np.ascontiguousarray(face_bgr[0, ..., ::-1]), a, (res, res), **linear)
    inner = slice(4, res - 4)
    assert np.abs(read_back[inner, inner] - direct[inner, inner]).mean() < 0.02


@pytest.mark.parametrize("key", MODELS)
def test_dfm_passes_deepfacelive_and_facefusion_checks(job, key):
    """What DeepFaceLive's DFMModel and FaceFusion's deep swapper check and assume before running a .dfm."""
    path = job[0] / f"{key}.dfm"
    proto = onnx.load(str(path), load_external_data=False)
    assert proto.ir_version <= 8  # onnxruntime 1.15 (DeepFaceLive's pin)
    assert all(o.version <= 19 for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    assert not any(onnx.external_data_helper.uses_external_data(t) for t in proto.graph.initializer)
    onnx.checker.check_model(proto, full_check=True)
    sess = _session(path)
    inputs = sess.get_inputs()
    assert len(inputs) in (1, 2) and inputs[0].name == "in_face:0"  # DFMModel: 'in_face' in inputs[0].name
    if len(inputs) == 2:
        assert inputs[1].name == "morph_value:0" and inputs[1].shape == [1]
    assert inputs[0].type == "tensor(float)"
    _, h, w, c = inputs[0].shape  # consumers read R from the shape: static and square
    assert isinstance(h, int) and h == w == MODELS[key].resolution and c == 3
    outputs = sess.get_outputs()
    assert [o.name for o in outputs] == ["out_face_mask:0", "out_celeb_face:0", "out_celeb_face_mask:0"]
    assert [o.shape[1:] for o in outputs] == [[h, w, 1], [h, w, 3], [h, w, 1]]
    feed = {"in_face:0": np.random.default_rng(0).random((1, h, w, 3), dtype=np.float32)}
    mask_dst, celeb, celeb_mask = sess.run(None, feed)  # FaceFusion unpacks exactly three, by position
    assert [mask_dst.shape, celeb.shape, celeb_mask.shape] == [(1, h, w, 1), (1, h, w, 3), (1, h, w, 1)]
    for out in (mask_dst, celeb, celeb_mask):
        assert out.dtype == np.float32 and out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("key", MODELS)
def test_plain_onnx_keeps_facelab_conventions(job, key):
    root, faces = job
    img, lm = faces["astronaut"]
    model, mcfg = load_model(root / key)
    sess = _session(root / f"{key}.onnx")
    assert [i.name for i in sess.get_inputs()] == ["dst"] and sess.get_inputs()[0].shape[1:] == [3, 64, 64]
    assert [o.name for o in sess.get_outputs()] == ["face", "mask_swap", "mask_dst"]
    assert sess.get_modelmeta().custom_metadata_map["facelab.face_type"] == mcfg.face_type
    x = np.stack([_crop(img, lm, 64, mcfg.face_type), _crop(*faces["hopper"], 64, mcfg.face_type)])
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # batch 2: the batch axis is free
    got = sess.run(None, {"dst": x})
    with torch.no_grad():
        want = model.swap(torch.from_numpy(x))
    for g, w in zip(got, want, strict=True):
        assert np.abs(g - w.numpy()).max() < 1e-3


def test_cli_export_dfm(job, run_cli, tmp_path):
    root, _ = job
    rc, out, err = run_cli(["export", "--model", root / "df_full", "--format", "dfm", "-o", tmp_path / "x.bin"])
    assert rc == 0, err
    assert "DFL .dfm" in out and "re-cropped to full" in out
    assert _session(tmp_path / "x.bin").get_inputs()[0].name == "in_face:0"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]  # no temporary file left beside it


def _model_mid_write(root: Path, tmp: Path) -> Path:
    """A model folder whose first checkpoint is still being written: only checkpoint.tmp/, half of it."""
    m = tmp / "model"
    (m / "checkpoint.tmp").mkdir(parents=True)
    data = (root / "df_full" / "checkpoint" / "model.safetensors").read_bytes()
    (m / "checkpoint.tmp" / "model.safetensors").write_bytes(data[: len(data) // 2])
    return m


@pytest.mark.parametrize("problem", ["empty model folder", "model mid-write", "missing -o folder", "unknown format"])
def test_bad_input_is_one_line_and_writes_nothing(job, run_cli, tmp_path, problem):
    root, _ = job
    model, out, extra = root / "df_full", tmp_path / "out" / "swap.dfm", []
    (tmp_path / "out").mkdir()
    if problem == "empty model folder":
        model = tmp_path / "empty"
        model.mkdir()
    elif problem == "model mid-write":
        model = _model_mid_write(root, tmp_path)
    elif problem == "missing -o folder":
        out = tmp_path / "nowhere" / "swap.dfm"
    else:
        extra = ["--format", "tflite"]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    rc, stdout, err = run_cli(["export", "--model", model, "-o", out, *extra])
    assert rc == 2 and stdout == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facelab: error:"), err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # no file, no folder


def _frames(folder: Path) -> list[np.ndarray]:
    return [cv2.imread(str(p)) for p in sorted(folder.glob("*.png"))]


def test_merge_with_onnxruntime_equals_torch(job, tmp_path, astronaut):
    """The same clip merged by torch (model folder) and by onnxruntime (its .onnx; the whole-face model's .dfm)."""
    root, _ = job
    clip = write_motion_clip(astronaut, tmp_path / "dst.mp4", frames=4, size=160, audio=False)
    extract(clip, tmp_path / "dst_fs", ExtractConfig(size=128))
    cfg = MergeConfig(precision="fp32")
    runs = [("df_full", "onnx"), ("liae_wf", "dfm")]
    for key, fmt in runs:
        ref = merge(clip, root / key, tmp_path / f"{key}_torch", cfg, faceset=tmp_path / "dst_fs")
        ort_cfg = MergeConfig(precision="fp32", runtime="onnxruntime")
        got = merge(clip, root / f"{key}.{fmt}", tmp_path / f"{key}_{fmt}", ort_cfg, faceset=tmp_path / "dst_fs")
        assert ref.frames == got.frames == 4 and ref.faces_swapped == got.faces_swapped > 0
        a, b = _frames(tmp_path / f"{key}_torch"), _frames(tmp_path / f"{key}_{fmt}")
        diff = np.abs(np.stack(a).astype(int) - np.stack(b).astype(int))
        assert diff.max() <= 2 and diff.mean() < 0.01, (key, fmt, diff.max(), diff.mean())


def test_merge_runtime_mismatch_is_one_line(job, run_cli, tmp_path):
    root, _ = job
    clip = tmp_path / "missing.mp4"
    rc, _, err = run_cli(
        ["merge", clip, "--model", root / "df_full", "-o", tmp_path / "o.mp4", "--runtime", "onnxruntime"]
    )
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "exported" in err
    rc, _, err = run_cli(["merge", clip, "--model", root / "df_full.dfm", "-o", tmp_path / "o.mp4"])
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--runtime onnxruntime" in err
    rc, _, err = run_cli(["merge", clip, "--model", root / "df_full", "-o", tmp_path / "o.mp4", "--runtime", "tf"])
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "unknown runtime" in err
    assert not (tmp_path / "o.mp4").exists()


def test_face_types_other_than_full_resample_consistently():
    """Every face type's crop is one similarity away from the whole face's (``head``: for a frontal face)."""
    for ft in FaceType:
        a = crop_change("whole_face", ft, 128)
        assert abs(a[0, 0] - a[1, 1]) < 1e-9 and abs(a[0, 1]) < 1e-9 and abs(a[1, 0]) < 1e-9
    assert np.allclose(crop_change("whole_face", "whole_face", 128), np.eye(3)[:2])
