"""Merge's xseg mask modes (DFL's): xseg-dst follows the dst faceset's stored masks (from 'facelab mask apply') through
another face type and size than the model's; xseg-prd runs a mask model on the swapped face; the product modes;
and one-line errors for missing stored masks, a missing --mask-model and a broken mask model."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from facelab.cli import main as cli
from facelab.config import ExtractConfig, MaskConfig, MergeConfig, ModelConfig, TrainConfig
from facelab.demo import write_motion_clip
from facelab.errors import FacelabError
from facelab.extract.pipeline import extract
from facelab.faceset.index import load_metas
from facelab.faceset.meta import FaceMeta, encode_xseg_mask
from facelab.faceset.store import face_files, read_face, write_face
from facelab.geometry.facetype import FaceType, transform_matrix
from facelab.geometry.umeyama import apply_affine
from facelab.imaging.masks import hull_mask
from facelab.io import checkpoint
from facelab.io.media import iter_frames
from facelab.merge import xseg
from facelab.merge.pipeline import merge
from facelab.merge.preview import contact_sheet
from facelab.models.xseg import build_net
from facelab.train.loop import Trainer

TINY = ModelConfig(archi="df-ud", resolution=64, face_type="full", ae_dims=32, e_dims=16, d_dims=16, d_mask_dims=8)
FAST = TrainConfig(batch=4, workers=0, precision="fp32", preview_every=0, autosave_minutes=1e9)
FRAMES = 6


@pytest.fixture(scope="module")
def job(tmp_path_factory, hopper, astronaut):
    """A 64 px 'full' model and a dst clip whose faceset is whole_face 128 px (another type and size)."""
    root = tmp_path_factory.mktemp("xseg")
    src_clip = write_motion_clip(hopper, root / "src.mp4", frames=FRAMES, size=256, audio=False)
    dst_clip = write_motion_clip(astronaut, root / "dst.mp4", frames=FRAMES, size=256, audio=False)
    cfg = ExtractConfig(size=128)
    extract(src_clip, root / "src_fs", cfg)
    extract(dst_clip, root / "dst_fs", cfg)
    Trainer(root / "src_fs", root / "dst_fs", root / "model", TINY, FAST).run(iterations=2)
    return root, dst_clip


def _mouth_box(meta: FaceMeta, grow: float = 0.0) -> tuple[float, float, float, float]:
    """x0, y0, x1, y1 of the mouth landmarks in the face's aligned px, grown by ``grow`` aligned px per side."""
    (x0, y0), (x1, y1) = meta.landmarks[48:68].min(0), meta.landmarks[48:68].max(0)
    return x0 - 6 - grow, y0 - 6 - grow, x1 + 6 + grow, y1 + 6 + grow


def _with_xseg(src: Path, out: Path, mask_of) -> Path:
    """A copy of faceset ``src`` whose faces store ``mask_of(meta)`` (aligned square, 0..1) as their xseg mask."""
    out.mkdir()
    for p in face_files(src):
        img, meta = read_face(p)
        meta.xseg_mask = encode_xseg_mask(mask_of(meta))
        write_face(out / p.name, img, meta)
    return out


def _all_but_mouth(meta: FaceMeta) -> np.ndarray:
    m = np.ones((meta.size, meta.size), np.float32)
    x0, y0, x1, y1 = (int(round(v)) for v in _mouth_box(meta))
    m[y0:y1, x0:x1] = 0
    return m


def _pngs(folder: Path) -> list[np.ndarray]:
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(folder.glob("*.png"))]


def _mask_model(path: Path, bias: float) -> Path:
    """A mask model folder whose network says ``sigmoid(bias)`` everywhere (head weights zero)."""
    cfg = MaskConfig(widths="2,2,2,2,2,2")
    net = build_net(cfg)
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.fill_(bias)
    state = {"mask": asdict(cfg), "iteration": 0}
    checkpoint.save(path, checkpoint.Checkpoint({f"net.{k}": v for k, v in net.state_dict().items()}, {}, state))
    return path


# --- xseg-dst -----------------------------------------------------------------------------------------------------


def test_xseg_dst_keeps_the_dst_where_the_stored_mask_excludes(job, tmp_path):
    root, dst = job
    fs = _with_xseg(root / "dst_fs", tmp_path / "fs", _all_but_mouth)
    s = merge(dst, root / "model", tmp_path / "out", MergeConfig(mask_mode="xseg-dst", blur=16), faceset=fs)
    assert s.frames == FRAMES and s.faces_swapped == FRAMES
    metas = {m.frame_index: m for _, m in load_metas(fs)}
    for got, frame in zip(_pngs(tmp_path / "out"), iter_frames(dst)):
        meta = metas[frame.index]
        ys, xs = np.mgrid[: got.shape[0], : got.shape[1]]
        a = apply_affine(meta.transform, np.stack([xs.ravel(), ys.ravel()], 1).astype(float)).reshape(*xs.shape, 2)
        changed = (got != frame.image).any(axis=2)
        # the blur's fade (8 px at 4x of a 64 px crop = 2 crop px) plus interpolation, in aligned px
        margin = 0.08 * meta.size
        x0, y0, x1, y1 = _mouth_box(meta, -margin)
        mouth = (a[..., 0] > x0) & (a[..., 0] < x1) & (a[..., 1] > y0) & (a[..., 1] < y1)
        assert mouth.sum() > 30 and not changed[mouth].any()  # the excluded mouth is the dst, bit for bit
        x0, y0, x1, y1 = _mouth_box(meta, margin)
        outside = ~((a[..., 0] > x0) & (a[..., 0] < x1) & (a[..., 1] > y0) & (a[..., 1] < y1))
        face = outside & (hull_mask(got.shape[:2], meta.source_landmarks) > 0)
        assert changed[face].mean() > 0.5  # the rest of the crop is swapped


def test_stored_xseg_lands_where_the_faceset_face_was(job):
    """A stored hull mask of a whole_face 128 px face, mapped into the 64 px 'full' crop, is that crop's hull."""
    root, _ = job
    full = FaceType.parse("full")
    for _, meta in load_metas(root / "dst_fs"):
        stored = encode_xseg_mask(hull_mask((meta.size, meta.size), meta.landmarks))
        got = xseg.stored_xseg(stored, meta.size, meta.inverse, meta.source_landmarks, 64, full) > 0.5
        m = transform_matrix(meta.source_landmarks, 64, full)
        want = hull_mask((64, 64), apply_affine(m, meta.source_landmarks)) > 0.5
        assert (got & want).sum() / (got | want).sum() > 0.9


def test_xseg_dst_without_stored_masks_is_a_one_line_error(job, tmp_path, capsys):
    root, dst = job
    with pytest.raises(FacelabError, match=f"{FRAMES} of {FRAMES} faces have no stored xseg mask") as e:
        merge(dst, root / "model", tmp_path / "o.mp4", MergeConfig(mask_mode="xseg-dst"), faceset=root / "dst_fs")
    assert str(root / "dst_fs") in str(e.value) and "facelab mask apply" in str(e.value)
    assert "\n" not in str(e.value) and not (tmp_path / "o.mp4").exists()
    args = ["merge", str(dst), "--model", str(root / "model"), "-o", str(tmp_path / "o.mp4"), "--mask-mode"]
    assert cli([*args, "xseg-dst", "--faceset", str(root / "dst_fs")]) == 2
    err = capsys.readouterr().err.strip()
    assert "faces have no stored xseg mask" in err and len(err.splitlines()) == 1
    assert cli([*args, "xseg-dst"]) == 2  # no --faceset
    err = capsys.readouterr().err.strip()
    assert "needs --faceset" in err and len(err.splitlines()) == 1


def test_a_damaged_stored_mask_names_the_face(job, tmp_path):
    root, dst = job
    fs = _with_xseg(root / "dst_fs", tmp_path / "fs", _all_but_mouth)
    bad = face_files(fs)[2]
    img, meta = read_face(bad)
    meta.xseg_mask = "not a png"
    write_face(bad, img, meta)
    with pytest.raises(FacelabError, match="xseg_mask is not") as e:
        merge(dst, root / "model", tmp_path / "out", MergeConfig(mask_mode="xseg-dst"), faceset=fs)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)


# --- xseg-prd -----------------------------------------------------------------------------------------------------


def test_xseg_prd_uses_the_mask_model(job, tmp_path):
    root, dst = job
    fs = _with_xseg(root / "dst_fs", tmp_path / "fs", lambda m: np.ones((m.size, m.size), np.float32))
    nothing, everything = _mask_model(tmp_path / "none", -20.0), _mask_model(tmp_path / "all", 20.0)
    merge(dst, root / "model", tmp_path / "none_out", MergeConfig(mask_mode="xseg-prd", mask_model=str(nothing)))
    for got, frame in zip(_pngs(tmp_path / "none_out"), iter_frames(dst)):
        np.testing.assert_array_equal(got, frame.image)  # the mask model keeps nothing: the dst comes back
    # a mask model and stored masks that keep the whole crop: the four-mask product is the learned masks' product
    four = MergeConfig(mask_mode="learned-prd*learned-dst*xseg-prd*xseg-dst", mask_model=str(everything))
    merge(dst, root / "model", tmp_path / "four", four, faceset=fs)
    merge(dst, root / "model", tmp_path / "learned", MergeConfig(), faceset=fs)
    for a, b in zip(_pngs(tmp_path / "four"), _pngs(tmp_path / "learned"), strict=True):
        np.testing.assert_array_equal(a, b)
    settings = json.loads((tmp_path / "four.merge.json").read_text())
    assert settings["merge"]["mask_model"] == str(everything)


def test_xseg_input_puts_the_swapped_face_where_the_crop_is(job):
    root, _ = job
    landmarks = load_metas(root / "dst_fs")[0][1].source_landmarks
    to_xseg = xseg.crop_to_xseg(landmarks, 64, FaceType.parse("full"))
    context = np.zeros((256, 256, 3), np.float32)
    face = np.ones((64, 64, 3), np.float32)
    pasted = xseg.xseg_input(context, face, to_xseg)
    centre = apply_affine(to_xseg, np.array([[32.0, 32.0]]))[0].round().astype(int)
    assert pasted[centre[1], centre[0]].min() > 0.999 and pasted[0, 0].max() == 0.0  # a whole face is wider
    back = xseg.xseg_to_crop(np.ones((256, 256), np.float32), to_xseg, 64)
    assert back.min() > 0.999  # the 'full' crop lies inside the whole face


def test_xseg_prd_without_mask_model_or_with_a_broken_one_is_a_one_line_error(job, tmp_path, capsys):
    root, dst = job
    with pytest.raises(FacelabError, match="--mask-model"):
        merge(dst, root / "model", tmp_path / "o.mp4", MergeConfig(mask_mode="xseg-prd"))
    args = ["merge", str(dst), "--model", str(root / "model"), "-o", str(tmp_path / "o.mp4")]
    assert cli([*args, "--mask-mode", "xseg-prd"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--mask-model" in err and len(err.splitlines()) == 1
    broken = _mask_model(tmp_path / "broken", 0.0)
    (broken / "checkpoint" / "model.safetensors").write_bytes(b"\x00" * 64)  # truncated weights
    wrong_widths = _mask_model(tmp_path / "widths", 0.0)
    state = wrong_widths / "checkpoint" / "state.json"
    state.write_text(json.dumps({"mask": {**asdict(MaskConfig()), "widths": "a,b"}, "iteration": 0}))
    not_mask = root / "model"  # a swap model given as the mask model
    for bad in (broken, wrong_widths, not_mask, tmp_path / "missing", face_files(root / "dst_fs")[0]):
        cfg = MergeConfig(mask_mode="xseg-prd", mask_model=str(bad))
        with pytest.raises(FacelabError) as e:
            merge(dst, root / "model", tmp_path / "o.mp4", cfg)
        assert str(bad) in str(e.value) and "\n" not in str(e.value), (bad, str(e.value))
        assert not (tmp_path / "o.mp4").exists()
    assert cli([*args, "--mask-mode", "xseg-prd", "--mask-model", str(broken)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(broken) in err and len(err.splitlines()) == 1


def test_contact_sheet_varies_xseg_modes_and_checks_their_inputs(job, tmp_path):
    root, dst = job
    fs = _with_xseg(root / "dst_fs", tmp_path / "fs", _all_but_mouth)
    base = MergeConfig(mask_model=str(_mask_model(tmp_path / "all", 20.0)))
    grid = {"mask_mode": ["xseg-dst", "xseg-prd*xseg-dst"]}
    out = contact_sheet(dst, root / "model", [0, 3], grid, base, tmp_path / "sheet.png", thumb=64, faceset=fs)
    assert cv2.imread(str(out)).shape == (3 * (24 + 64), 2 * 64, 3)  # rows: the original + 2 modes; 2 frames
    with pytest.raises(FacelabError, match="have no stored xseg mask"):
        contact_sheet(dst, root / "model", [0], grid, base, tmp_path / "s.png", faceset=root / "dst_fs")
    with pytest.raises(FacelabError, match="--mask-model"):
        contact_sheet(dst, root / "model", [0], {"mask_mode": ["hull", "xseg-prd"]}, MergeConfig(), tmp_path / "s.png")
    assert not (tmp_path / "s.png").exists()
