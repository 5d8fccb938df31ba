"""Merge: frame count, audio and synthetic tag kept; pixels outside the pasted region untouched; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import write_h264
from facelab.cli import main as cli
from facelab.config import ExtractConfig, MergeConfig, ModelConfig, TrainConfig
from facelab.demo import write_motion_clip
from facelab.errors import FacelabError
from facelab.extract.pipeline import extract
from facelab.geometry.facetype import transform_matrix
from facelab.geometry.umeyama import apply_affine, invert_affine
from facelab.io.media import iter_frames
from facelab.io.video import read_tag
from facelab.merge.pipeline import merge, pasted_region
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
    from facelab.faceset.index import load_metas

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
