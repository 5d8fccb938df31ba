"""Merge: frame count, audio and synthetic tag kept; pixels outside the pasted region untouched; stored masks;
dst as a folder of frames; bad input."""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import cut_faststart, write_h264
from facelab.cli import main as cli
from facelab.config import ExtractConfig, MergeConfig, ModelConfig, TrainConfig
from facelab.demo import write_motion_clip
from facelab.errors import FacelabError
from facelab.extract.pipeline import extract
from facelab.faceset.index import load_metas
from facelab.faceset.meta import FaceMeta
from facelab.faceset.store import face_files, read_face, write_face
from facelab.geometry.facetype import transform_matrix
from facelab.geometry.umeyama import apply_affine, invert_affine
from facelab.io.media import iter_frames, natural_key, probe
from facelab.io.video import read_tag
from facelab.merge.pipeline import merge, pasted_region
from facelab.merge.preview import contact_sheet
from facelab.swap import swap
from facelab.train.loop import Trainer

TINY = ModelConfig(archi="df-ud", resolution=64, face_type="full", ae_dims=32, e_dims=16, d_dims=16, d_mask_dims=8)
FAST = TrainConfig(batch=4, workers=0, precision="fp32", preview_every=0, autosave_minutes=1e9)


@pytest.fixture(scope="module")
def job(tmp_path_factory, hopper, astronaut):
    root = tmp_path_factory.mktemp("merge")
    src_clip = write_motion_clip(hopper, root / "src.mp4", frames=12, size=256, audio=False)
    dst_clip = write_motion_clip(astronaut, root / "dst.mp4", frames=20, size=256)
    cfg = ExtractConfig(size=128)
    extract(src_clip, root / "src_fs", cfg)
    extract(dst_clip, root / "dst_fs", cfg)
    Trainer(root / "src_fs", root / "dst_fs", root / "model", TINY, FAST).run(iterations=3)
    return root, dst_clip


def _packets(path: Path, kind: str) -> list[bytes]:
    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type == kind]
        return [bytes(p) for p in c.demux(*streams) if p.size] if streams else []


def test_video_output_keeps_frames_audio_and_is_tagged(job):
    root, dst = job
    out = root / "out.mp4"
    s = merge(dst, root / "model", out, MergeConfig(), faceset=root / "dst_fs")
    assert s.frames == 20 and s.faces_swapped == 20
    assert len(list(iter_frames(out))) == 20
    with av.open(str(out)) as a, av.open(str(dst)) as b:
        assert abs(float(a.duration - b.duration)) / 1e6 < 1 / 30 + 1e-3
    assert _packets(out, "audio") == _packets(dst, "audio") != []
    tag = read_tag(out)
    assert tag is not None and "facelab" in json.dumps(tag)
    settings = json.loads(Path(str(out) + ".merge.json").read_text())
    assert settings["merge"]["color"] == "rct"


def test_png_sequence_equals_dst_outside_the_pasted_region(job):
    root, dst = job
    out = root / "frames"
    merge(dst, root / "model", out, MergeConfig(blur=16), faceset=root / "dst_fs")
    lms = {m.frame_index: m.source_landmarks for _, m in load_metas(root / "dst_fs")}
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 20
    changed_inside = 0
    for png, frame in zip(pngs, iter_frames(dst)):
        got = cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB)
        region = pasted_region(lms[frame.index], got.shape, 64, "full")
        # cross-check the region against the crop square computed independently
        inv = invert_affine(transform_matrix(lms[frame.index], 64, "full"))
        centre = apply_affine(inv, np.array([[32.0, 32.0]]))[0]
        assert region[int(centre[1]), int(centre[0])] and region.mean() < 0.5
        np.testing.assert_array_equal(got[~region], frame.image[~region])
        changed_inside += int((got[region] != frame.image[region]).any())
    assert changed_inside == 20


def test_live_faces_without_faceset(job):
    root, dst = job
    s = merge(dst, root / "model", root / "live.mkv", MergeConfig(color="none", blend="seamless"))
    assert s.frames == 20 and s.faces_swapped >= 19
    assert read_tag(root / "live.mkv") is not None


def test_faceset_of_another_video_is_refused(job, tmp_path, astronaut):
    root, dst = job
    other = write_motion_clip(astronaut, tmp_path / "other.mp4", frames=20, size=256)
    with pytest.raises(FacelabError, match="do not match"):
        merge(other, root / "model", tmp_path / "o.mp4", faceset=root / "dst_fs")


def test_cli_merge_errors_are_one_line(job, tmp_path, capsys):
    root, dst = job
    assert cli(["merge", str(dst), "--model", str(tmp_path / "nomodel"), "-o", str(tmp_path / "o.mp4")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no trained model" in err and len(err.splitlines()) == 1
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli(["merge", str(dst), "--model", str(root / "model"), "-o", str(blocker / "o.mp4")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_cli_inspect_and_contact_sheet(job, capsys):
    root, dst = job
    merge(dst, root / "model", root / "tagged.mp4", faceset=root / "dst_fs")
    assert cli(["inspect", str(root / "tagged.mp4")]) == 0
    assert "facelab" in capsys.readouterr().out
    assert cli(["inspect", str(dst)]) == 1
    sheet = root / "sheet.png"
    code = cli(
        [
            "merge",
            str(dst),
            "--model",
            str(root / "model"),
            "-o",
            str(sheet),
            "--preview",
            "0,10",
            "--grid",
            "color=none,rct",
            "blur=8,64",
        ]
    )
    assert code == 0
    img = cv2.imread(str(sheet))
    assert img.shape[1] == 2 * 320 and img.shape[0] == 5 * (320 + 24)  # original + 4 combinations


def test_dst_without_audio_and_with_odd_size(job, tmp_path, astronaut):
    root, _ = job
    # 4:4:4 allows odd sizes (phone and screen recordings have them); no audio
    dst = write_h264(tmp_path / "odd.mkv", [cv2.resize(astronaut, (251, 251))] * 10, pix_fmt="yuv444p")
    s = merge(dst, root / "model", tmp_path / "o.mp4", MergeConfig())
    assert s.frames == 10
    frames = list(iter_frames(tmp_path / "o.mp4"))
    assert len(frames) == 10 and frames[0].image.shape[:2] == (252, 252)  # padded by one pixel for yuv420p
    assert _packets(tmp_path / "o.mp4", "audio") == []


def test_only_like_swaps_only_the_chosen_person(job, tmp_path, hopper):
    root, dst = job
    ref = tmp_path / "hopper.jpg"
    cv2.imwrite(str(ref), cv2.cvtColor(hopper, cv2.COLOR_RGB2BGR))
    s = merge(dst, root / "model", tmp_path / "o.mp4", MergeConfig(only_like=str(ref)), faceset=root / "dst_fs")
    assert s.frames == 20 and s.faces_swapped == 0  # the dst shows the astronaut, not Grace Hopper
    same = tmp_path / "astronaut.jpg"
    from facelab.demo import astronaut_image

    cv2.imwrite(str(same), cv2.cvtColor(astronaut_image(), cv2.COLOR_RGB2BGR))
    s = merge(dst, root / "model", tmp_path / "p.mp4", MergeConfig(only_like=str(same)), faceset=root / "dst_fs")
    assert s.faces_swapped == 20


def test_motion_blur_follows_face_motion(job, tmp_path):
    root, dst = job
    a = merge(dst, root / "model", tmp_path / "a", MergeConfig(blur=16), faceset=root / "dst_fs")
    b = merge(dst, root / "model", tmp_path / "b", MergeConfig(blur=16, motion_blur=100), faceset=root / "dst_fs")
    assert a.frames == b.frames == 20

    def lap(p: Path) -> float:
        return float(cv2.Laplacian(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), cv2.CV_64F).var())

    sharp = [lap(p) for p in sorted((tmp_path / "a").glob("*.png"))]
    blurred = [lap(p) for p in sorted((tmp_path / "b").glob("*.png"))]
    assert sharp[0] == blurred[0]  # first frame: no previous position, no blur
    # the synthetic camera moves sinusoidally: fast in some frames (blurred), near-still at the turns (untouched)
    changed = [i for i in range(20) if blurred[i] != sharp[i]]
    assert len(changed) >= 5
    assert np.mean([blurred[i] for i in changed]) < np.mean([sharp[i] for i in changed])


def test_cli_merge_options_parse(job, tmp_path, hopper):
    root, dst = job
    ref = tmp_path / "h.jpg"
    cv2.imwrite(str(ref), cv2.cvtColor(hopper, cv2.COLOR_RGB2BGR))
    code = cli(
        [
            "merge",
            str(dst),
            "--model",
            str(root / "model"),
            "-o",
            str(tmp_path / "o.mp4"),
            "--faceset",
            str(root / "dst_fs"),
            "--only-like",
            str(ref),
            "--color",
            "lct",
            "--blur",
            "32",
            "--no-every-face",
        ]
    )
    assert code == 0
    assert json.loads((tmp_path / "o.mp4.merge.json").read_text())["merge"]["only_like"] == str(ref)


def test_mask_output_matches_what_changed(job, tmp_path):
    root, dst = job
    merge(
        dst, root / "model", tmp_path / "f", MergeConfig(blur=16), faceset=root / "dst_fs", mask_output=tmp_path / "m"
    )
    frames, masks = sorted((tmp_path / "f").glob("*.png")), sorted((tmp_path / "m").glob("*.png"))
    assert len(frames) == len(masks) == 20
    for png, mpng, src in zip(frames, masks, iter_frames(dst)):
        got = cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB)
        m = cv2.imread(str(mpng), cv2.IMREAD_GRAYSCALE)
        changed = (got != src.image).any(axis=2)
        assert m.max() > 0 and not changed[m == 0].any()  # nothing changes where the mask is empty


def test_contact_sheet_cells_are_what_merge_writes(job, tmp_path):
    root, dst = job
    cfg = MergeConfig(blur=16, color="lct")
    merge(dst, root / "model", tmp_path / "f", cfg, faceset=root / "dst_fs")
    pngs = sorted((tmp_path / "f").glob("*.png"))
    # thumb = frame size: the cells are the frames unscaled; the originals' row, then the one "default" row
    sheet = contact_sheet(dst, root / "model", [3, 11], {}, cfg, tmp_path / "s.png", thumb=256, faceset=root / "dst_fs")
    img = cv2.cvtColor(cv2.imread(str(sheet)), cv2.COLOR_BGR2RGB)
    assert img.shape[:2] == (2 * (24 + 256), 2 * 256)
    for col, frame in enumerate((3, 11)):
        original = img[24 : 24 + 256, col * 256 : (col + 1) * 256]
        cell = img[24 + 256 + 24 :, col * 256 : (col + 1) * 256]
        want = cv2.cvtColor(cv2.imread(str(pngs[frame])), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(cell, want)  # the merge's own per-frame path, not a look-alike
        assert (cell != original).any(axis=2).mean() > 0.05


# --- mask mode "stored": polygons saved with the dst faceset's faces ------------------------------------------------


def _faceset_with_polygons(src: Path, out: Path, polygons: Callable[[FaceMeta], list[dict]]) -> Path:
    """A copy of faceset ``src`` whose faces carry ``polygons(meta)`` as stored masks."""
    out.mkdir()
    for p in face_files(src):
        img, meta = read_face(p)
        meta.masks = polygons(meta)
        write_face(out / p.name, img, meta)
    return out


def _left_half(meta: FaceMeta) -> list[dict]:
    s = meta.size
    return [{"type": "include", "points": [[0, 0], [s / 2, 0], [s / 2, s], [0, s]]}]


def _aligned_x(meta: FaceMeta, shape: tuple[int, ...]) -> np.ndarray:
    """x of every frame pixel in the face's aligned square (aligned px)."""
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    return apply_affine(meta.transform, pts)[:, 0].reshape(shape[:2])


def _pngs(folder: Path) -> list[np.ndarray]:
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(folder.glob("*.png"))]


def test_stored_mask_left_half_leaves_the_right_half_untouched(job, tmp_path):
    root, dst = job
    fs = _faceset_with_polygons(root / "dst_fs", tmp_path / "fs", _left_half)
    s = merge(dst, root / "model", tmp_path / "out", MergeConfig(mask_mode="stored", blur=16), faceset=fs)
    assert s.frames == 20 and s.faces_swapped == 20 and s.faces_hull_fallback == 0
    metas = {m.frame_index: m for _, m in load_metas(fs)}
    changed_left = 0
    for got, frame in zip(_pngs(tmp_path / "out"), iter_frames(dst)):
        meta = metas[frame.index]
        ax = _aligned_x(meta, got.shape)
        changed = (got != frame.image).any(axis=2)
        margin = 0.08 * meta.size  # the blur's fade (8 px at 4x of a 64-px crop) plus interpolation, aligned px
        assert not changed[ax > meta.size / 2 + margin].any()  # right half (and everything right of it) as dst
        left = (ax < meta.size / 2 - margin) & pasted_region(meta.source_landmarks, got.shape, 64, "full")
        changed_left += int(changed[left].mean() > 0.2)
    assert changed_left == 20


def test_stored_mask_falls_back_to_hull_for_faces_without_polygons(job, tmp_path, caplog):
    root, dst = job
    fs = _faceset_with_polygons(
        root / "dst_fs", tmp_path / "fs", lambda m: _left_half(m) if m.frame_index % 2 == 0 else []
    )
    with caplog.at_level(logging.WARNING, logger="facelab.merge.pipeline"):
        s = merge(dst, root / "model", tmp_path / "stored", MergeConfig(mask_mode="stored", blur=16), faceset=fs)
    assert s.faces_hull_fallback == 10
    assert len([r for r in caplog.records if "landmark hull" in r.getMessage()]) == 1  # once per run
    merge(dst, root / "model", tmp_path / "hull", MergeConfig(mask_mode="hull", blur=16), faceset=fs)
    for i, (a, b) in enumerate(zip(_pngs(tmp_path / "stored"), _pngs(tmp_path / "hull"))):
        if i % 2:
            np.testing.assert_array_equal(a, b)  # no polygons: exactly the hull merge
        else:
            assert (a != b).any()


def test_stored_mask_without_faceset_is_a_clear_error(job, tmp_path, capsys):
    root, dst = job
    with pytest.raises(FacelabError, match="stored masks need --faceset"):
        merge(dst, root / "model", tmp_path / "o.mp4", MergeConfig(mask_mode="stored"))
    args = ["merge", str(dst), "--model", str(root / "model"), "-o", str(tmp_path / "o.mp4"), "--mask-mode", "stored"]
    assert cli(args) == 2
    err = capsys.readouterr().err.strip()
    assert "stored masks need --faceset" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.mp4").exists()


# --- dst as a folder of frames -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def frames_job(job):
    """The dst clip as frame_1.png .. frame_20.png (unpadded: name order is not frame order) and its faceset."""
    root, dst = job
    folder = root / "dst_frames"
    folder.mkdir()
    for f in iter_frames(dst):
        cv2.imwrite(str(folder / f"frame_{f.index + 1}.png"), cv2.cvtColor(f.image, cv2.COLOR_RGB2BGR))
    extract(folder, root / "frames_fs", ExtractConfig(size=128))
    return folder, root / "frames_fs"


def test_frame_folder_to_png_sequence_in_natural_order(job, frames_job, tmp_path):
    root, dst = job
    folder, fs = frames_job
    out = tmp_path / "out"
    args = ["merge", str(folder), "--model", str(root / "model"), "-o", f"{out}/", "--faceset", str(fs), "--blur", "16"]
    assert cli(args) == 0
    lms = {Path(m.source_file).name: m.source_landmarks for _, m in load_metas(fs)}
    got = _pngs(out)
    assert len(got) == 20
    for i, (img, frame) in enumerate(zip(got, iter_frames(dst))):
        region = pasted_region(lms[f"frame_{i + 1}.png"], img.shape, 64, "full")
        np.testing.assert_array_equal(img[~region], frame.image[~region])  # frame_2 follows frame_1, not frame_19
        assert (img[region] != frame.image[region]).any()
    assert json.loads((out / "frames.json").read_text())["fps"] == 30


def test_frame_folder_to_video_at_given_or_default_fps(job, frames_job, tmp_path, caplog):
    root, _ = job
    folder, fs = frames_job
    s = merge(folder, root / "model", tmp_path / "o.mp4", MergeConfig(), faceset=fs, fps=25)
    assert s.frames == 20 and s.faces_swapped == 20
    info = probe(tmp_path / "o.mp4")
    assert info.frames == 20 and info.fps == 25
    assert _packets(tmp_path / "o.mp4", "audio") == [] and read_tag(tmp_path / "o.mp4") is not None
    with caplog.at_level(logging.WARNING, logger="facelab.merge.pipeline"):  # faces found on the fly this time
        s = merge(folder, root / "model", tmp_path / "d.mkv", MergeConfig())
    assert s.frames == 20 and s.faces_swapped >= 19
    assert probe(tmp_path / "d.mkv").fps == 30
    assert any("30 fps" in r.getMessage() for r in caplog.records)


def _small_folder(folder: Path, images: list[np.ndarray]) -> Path:
    folder.mkdir()
    for i, img in enumerate(images):
        cv2.imwrite(str(folder / f"f{i + 1}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return folder


@pytest.mark.parametrize("problem", ["mixed sizes", "not an image", "truncated"])
def test_bad_frame_folder_is_a_one_line_error_naming_the_file(job, tmp_path, astronaut, capsys, problem):
    root, _ = job
    img = cv2.resize(astronaut, (64, 64))
    folder = _small_folder(tmp_path / "frames", [img] * 3)
    bad = folder / "f2.png"
    if problem == "mixed sizes":
        cv2.imwrite(str(bad), cv2.resize(img, (66, 64)))
    elif problem == "not an image":
        bad.write_bytes(b"this is not a PNG")
    else:  # valid header, broken data: found while merging; the partial video is removed
        bad.write_bytes(bad.read_bytes()[:200])
    out = tmp_path / "o.mp4"
    assert cli(["merge", str(folder), "--model", str(root / "model"), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "f2.png" in err and len(err.splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob("*.partial*"))


def test_swap_accepts_a_frame_folder(job, frames_job, tmp_path, monkeypatch):
    root, _ = job
    folder, fs = frames_job
    # start from finished extraction and training (both resume), so this checks swap's plumbing, not its speed
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(root / "src_fs", work / "src_faceset")
    shutil.copytree(fs, work / "dst_faceset")
    shutil.copytree(root / "model", work / "model")
    monkeypatch.setattr("facelab.swap.preset", lambda name: (TINY, FAST))
    rep = swap([root / "src.mp4"], folder, tmp_path / "o.mp4", iters=3, workdir=work, fps=24, log=lambda m: None)
    assert rep.merged_frames == 20 and rep.iterations == 3
    info = probe(tmp_path / "o.mp4")
    assert info.frames == 20 and info.fps == 24
    assert cv2.imread(rep.contact_sheet).shape[0] == 5 * (320 + 24)


def test_natural_key_orders_numbers_by_value():
    names = ["frame_10.png", "frame_2.png", "frame_1.png", "Frame_3.png", "b.png", "a10b2.png", "a2b10.png"]
    assert sorted(names, key=natural_key) == [
        "a2b10.png",
        "a10b2.png",
        "b.png",
        "frame_1.png",
        "frame_2.png",
        "Frame_3.png",
        "frame_10.png",
    ]


def test_truncated_dst_says_how_many_frames_were_written_of_how_many(job, tmp_path, capsys):
    """A dst cut in half (index at the front): the frames that decode are merged into a complete video, and the
    command fails with one line saying how many frames it wrote of the 20 the dst declares."""
    root, dst = job
    (tmp_path / "cut").mkdir()
    cut = cut_faststart(dst, tmp_path / "cut" / dst.name, 0.5)  # same name: the dst faceset still matches
    out = tmp_path / "o.mp4"
    args = ["merge", str(cut), "--model", str(root / "model"), "--faceset", str(root / "dst_fs"), "-o", str(out)]
    assert cli(args) == 2
    err = capsys.readouterr().err.strip()
    m = re.fullmatch(
        rf"facelab: error: {re.escape(str(cut))}: truncated or damaged: decoded (\d+) of 20 frames "
        rf"\(stopped at \d+\.\d\d s\); merge wrote (\d+) of 20 frames to {re.escape(str(out))}",
        err,
    )
    assert m, err
    assert 0 < int(m[1]) == int(m[2]) < 20
    assert len(list(iter_frames(out))) == int(m[2])


def test_torch_predictor_bf16_weights_match_autocast_and_leave_the_model_alone():
    import torch

    from facelab.merge.pipeline import TorchPredictor
    from facelab.models.saehd import SAEHD

    torch.manual_seed(0)
    for archi in ("liae-ud", "df-ud"):
        cfg = ModelConfig(archi=archi, resolution=64, ae_dims=64, e_dims=16, d_dims=16, d_mask_dims=8)
        model = SAEHD(cfg).eval()
        crops = np.random.default_rng(0).random((3, 64, 64, 3), dtype=np.float32)
        x = torch.from_numpy(crops.transpose(0, 3, 1, 2).copy()).contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            want = [t.float().clamp(0, 1).numpy() for t in model.swap(x)]
        got = TorchPredictor(model, cfg, "bf16")(crops)
        tol = 2**-7  # one bf16 step near 1: oneDNN may pick another kernel for a cast tensor than for bf16 weights
        np.testing.assert_allclose(got[0], want[0].transpose(0, 2, 3, 1), rtol=0, atol=tol)
        np.testing.assert_allclose(got[1], want[1][:, 0], rtol=0, atol=tol)
        np.testing.assert_allclose(got[2], want[2][:, 0], rtol=0, atol=tol)
        assert next(model.parameters()).dtype == torch.float32  # the caller's model keeps its weights
        fp32 = TorchPredictor(model, cfg, "fp32")
        assert fp32.model is model and fp32(crops)[0].dtype == np.float32
