"""Faceset tools (index cache, info, sort, rename, filter, dedupe, trash) on a faceset extracted from generated images."""

from __future__ import annotations

import dataclasses
import json
import logging
import pickle
import re
import shutil
import sqlite3
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from facelab.cli import main as cli
from facelab.config import ExtractConfig
from facelab.errors import FacelabError, FacesetError
from facelab.extract.pipeline import extract
from facelab.faceset import index as index_mod
from facelab.faceset.dedupe import candidate_pairs, claim_duplicates, find_duplicates, verifier
from facelab.faceset.index import CACHE_NAME, SORT_TMP_DIR, load_metas
from facelab.faceset.info import faceset_info, format_info, plot_pose_histogram, pose_histogram
from facelab.faceset.meta import embed
from facelab.faceset.sort import (
    apply_order,
    color_histograms,
    filter_faceset,
    hist_chain,
    move_to_trash,
    sort_faceset,
    strip_rank,
)
from facelab.faceset.store import face_files, read_face, read_meta
from facelab.io.atomic import write_atomic

HOPPER = ["hopper_0.jpg", "hopper_blur_0.jpg", "hopper_copy_0.jpg", "hopper_flip_0.jpg"]
ASTRO = ["astro_0.jpg", "astro_flip_0.jpg", "astro_rot_0.jpg", "astro_sharp_0.jpg"]
ALL = sorted(HOPPER + ASTRO)


def _write(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def master(tmp_path_factory, hopper, astronaut) -> Path:
    """Eight faces: two people; an exact copy, a sharpened copy (near-duplicates), mirrored, blurred, rotated+dark."""
    src = tmp_path_factory.mktemp("images")
    _write(src / "hopper.png", hopper)
    _write(src / "hopper_copy.png", hopper)
    _write(src / "hopper_flip.png", np.ascontiguousarray(hopper[:, ::-1]))
    _write(src / "hopper_blur.png", cv2.GaussianBlur(hopper, (0, 0), 4))
    _write(src / "astro.png", astronaut)
    _write(src / "astro_flip.png", np.ascontiguousarray(astronaut[:, ::-1]))
    rot = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((256, 256), 20, 1.0), (512, 512))
    _write(src / "astro_rot.png", (rot * 0.7).astype(np.uint8))
    _write(src / "astro_sharp.png", cv2.addWeighted(astronaut, 1.8, cv2.GaussianBlur(astronaut, (0, 0), 2), -0.8, 0))
    out = tmp_path_factory.mktemp("faceset") / "fs"
    s = extract(src, out, ExtractConfig(size=128))
    assert s.faces_written == 8
    return out


@pytest.fixture
def fs(master, tmp_path) -> Path:
    """A private copy of the faceset (tests rename and move faces)."""
    return Path(shutil.copytree(master, tmp_path / "fs"))


def _names(paths) -> list[str]:
    return [Path(p).name for p in paths]


def _set_meta(path: Path, **changes) -> None:
    """Rewrite a face's metadata in place (image bytes untouched)."""
    write_atomic(path, embed(path.read_bytes(), dataclasses.replace(read_meta(path), **changes)))


# --- index ---------------------------------------------------------------------------------------------------------


def test_index_lists_faces_and_caches_them(fs, monkeypatch):
    faces = load_metas(fs)
    assert _names(p for p, _ in faces) == ALL
    assert (fs / CACHE_NAME).is_file()
    with sqlite3.connect(fs / CACHE_NAME) as con:
        assert con.execute("SELECT COUNT(*) FROM faces").fetchone()[0] == 8
    # a warm cache answers without reading a single face file
    monkeypatch.setattr(index_mod, "read_any_meta", lambda p: pytest.fail(f"{p} re-read despite the cache"))
    again = load_metas(fs)
    assert [(p, m.to_dict()) for p, m in again] == [(p, m.to_dict()) for p, m in faces]


def test_index_follows_hand_edits_and_rebuilds_a_corrupt_cache(fs, caplog):
    load_metas(fs)
    (fs / "astro_flip_0.jpg").unlink()  # user deletes a bad face by hand
    _set_meta(fs / "hopper_0.jpg", yaw=33.0)  # ... and another tool edits one
    faces = dict(load_metas(fs))
    assert "astro_flip_0.jpg" not in _names(faces) and len(faces) == 7
    assert faces[fs / "hopper_0.jpg"].yaw == pytest.approx(33.0)
    with sqlite3.connect(fs / CACHE_NAME) as con:
        assert {n for (n,) in con.execute("SELECT name FROM faces")} == set(_names(faces))

    (fs / CACHE_NAME).write_bytes(b"this is not a database" * 100)
    assert len(load_metas(fs)) == 7
    with sqlite3.connect(fs / CACHE_NAME) as con:
        assert con.execute("SELECT COUNT(*) FROM faces").fetchone()[0] == 7

    # a cache that cannot be opened at all (here: a folder in its place) only costs speed
    (fs / CACHE_NAME).unlink()
    (fs / CACHE_NAME).mkdir()
    assert len(load_metas(fs)) == 7

    # images without metadata are skipped with a warning naming them
    _write(fs / "holiday.jpg", np.full((64, 64, 3), 128, np.uint8))
    with caplog.at_level(logging.WARNING):
        assert "holiday.jpg" not in _names(p for p, _ in load_metas(fs))
    assert "holiday.jpg" in caplog.text


def test_index_reads_dfl_faces(fs):
    img, meta = read_face(fs / "hopper_0.jpg")
    d = {
        "face_type": "whole_face",
        "landmarks": meta.landmarks.astype(np.float32),
        "source_filename": "hopper.png",
        "source_rect": [int(v) for v in meta.source_rect],
        "source_landmarks": meta.source_landmarks.tolist(),
        "image_to_face_mat": meta.transform,
    }
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    jpeg = buf.tobytes()
    at = 4 + struct.unpack(">H", jpeg[4:6])[0]  # after SOI + JFIF APP0, where DFL puts its APP15
    payload = pickle.dumps(d, protocol=4)
    (fs / "dfl_7.jpg").write_bytes(jpeg[:at] + struct.pack(">HH", 0xFFEF, len(payload) + 2) + payload + jpeg[at:])
    faces = dict(load_metas(fs))
    m = faces[fs / "dfl_7.jpg"]
    assert len(faces) == 9 and m.face_type == "whole_face" and m.size == 128 and m.blur > 0
    np.testing.assert_allclose(m.landmarks, meta.landmarks, atol=1e-3)
    assert sort_faceset(fs, "blur")  # sorts and filters treat it like any face


def test_index_errors_on_missing_or_empty_folder(tmp_path):
    with pytest.raises(FacesetError, match="no such faceset folder"):
        load_metas(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FacesetError, match="no face images"):
        load_metas(tmp_path / "empty")
    _write(tmp_path / "empty" / "cat.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(FacesetError, match="no facelab or DFL faces"):
        load_metas(tmp_path / "empty")


# --- info ----------------------------------------------------------------------------------------------------------


def test_info_counts_and_pose_histogram(fs, capsys):
    info = faceset_info(fs)
    assert info["count"] == 8 and info["frames"] == 8 and info["synthetic"] == 0
    assert info["face_types"] == {"whole_face": 8} and info["sizes"] == {"128": 8}
    assert len(info["sources"]) == 8 and sum(info["sources"].values()) == 8
    assert info["detectors"] == {"mediapipe": 8} and info["landmarkers"] == {"dlib68+refine": 8}
    hist = info["pose_histogram"]
    assert hist["edges"] == list(range(-90, 91, 15))
    assert np.asarray(hist["yaw_pitch_counts"]).shape == (12, 12)
    assert np.sum(hist["yaw_pitch_counts"]) == sum(hist["yaw_counts"]) == sum(hist["pitch_counts"]) == 8
    for k in ("yaw", "pitch", "roll"):
        assert info[k]["min"] <= info[k]["median"] <= info[k]["max"]
    assert info["blur_median"] > 0

    text = format_info(info, ascii_only=False)
    assert "8 faces" in text and "█" in text and "-90..-75 |" in text
    assert "#" in format_info(info, ascii_only=True)

    assert cli(["faceset", "info", str(fs), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 8


def test_pose_histogram_bins_and_clips():
    yaw = np.array([-120.0, -90.0, -0.1, 0.0, 14.9, 15.0, 90.0])
    h = pose_histogram(yaw, np.zeros_like(yaw))
    assert h.sum() == 7
    assert h[:, 6].tolist() == [2, 0, 0, 0, 0, 1, 2, 1, 0, 0, 0, 1]  # pitch 0 falls in bin [0, 15)


def test_plot_writes_a_png(fs, tmp_path):
    png = tmp_path / "pose.png"
    plot_pose_histogram(fs, png)
    img = cv2.imread(str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and img is not None and img.shape[1] > img.shape[0]


# --- sort ----------------------------------------------------------------------------------------------------------


def test_blur_sort_puts_blurred_copy_last(fs):
    order = sort_faceset(fs, "blur")
    assert sorted(_names(order)) == ALL and order[-1].name == "hopper_blur_0.jpg"
    blur = [read_meta(p).blur for p in order]
    assert blur == sorted(blur, reverse=True)


@pytest.mark.parametrize("by", ["yaw", "pitch", "size"])
def test_pose_and_size_sorts_are_descending(fs, by):
    order = sort_faceset(fs, by)
    key = {
        "yaw": lambda m: m.yaw,
        "pitch": lambda m: m.pitch,
        "size": lambda m: (m.source_rect[2] - m.source_rect[0]) * (m.source_rect[3] - m.source_rect[1]),
    }[by]
    values = [key(read_meta(p)) for p in order]
    assert sorted(_names(order)) == ALL and values == sorted(values, reverse=True)


def test_hist_sort_is_a_nearest_neighbour_chain(fs):
    order = sort_faceset(fs, "hist")
    assert order[0].name == ALL[0] and sorted(_names(order)) == ALL
    i = _names(order).index("hopper_0.jpg")
    assert {order[i - 1].name, order[i + 1].name} & {"hopper_copy_0.jpg"}  # identical faces are adjacent
    # the vectorised chain is DFL's: greedy over OpenCV's Bhattacharyya distance summed over the three channels
    hists = color_histograms(face_files(fs))
    assert hist_chain(hists) == _compare_hist_chain(hists)


def test_hist_chain_matches_opencv_on_many_histograms():
    # enough faces that the chain compacts its rows (every time half are visited) several times
    rng = np.random.default_rng(3)
    hists = (rng.gamma(0.5, 1.0, (60, 3, 256)) * rng.integers(0, 2, (60, 3, 256))).astype(np.float32)
    hists[7] = hists[41]  # a tie: the lower index must come first
    hists[12] = 0  # an empty histogram must not break the chain
    assert hist_chain(hists) == _compare_hist_chain(hists) and hist_chain(hists[:0]) == []


def _compare_hist_chain(hists: np.ndarray) -> list[int]:
    """DFL's hist sort: from face 0, each next face is the unvisited one with the lowest summed
    ``cv2.compareHist(.., HISTCMP_BHATTACHARYYA)``, lowest index on ties."""
    n = len(hists)
    d = np.array(
        [
            [
                sum(cv2.compareHist(hists[i, c], hists[j, c], cv2.HISTCMP_BHATTACHARYYA) for c in range(3))
                for j in range(n)
            ]
            for i in range(n)
        ]
    )
    chain, left = [0], set(range(1, n))
    while left:
        nxt = min(left, key=lambda j: (d[chain[-1], j], j))
        chain.append(nxt)
        left.remove(nxt)
    return chain


def test_identity_sort_ranks_the_photographed_person_first(fs, hopper, tmp_path):
    photo = _write(tmp_path / "grace.jpg", hopper)
    order = sort_faceset(fs, "identity", photo=photo)
    assert set(_names(order[:4])) == set(HOPPER) and set(_names(order[4:])) == set(ASTRO)
    with pytest.raises(FacelabError, match="--photo"):
        sort_faceset(fs, "identity")
    blank = _write(tmp_path / "wall.jpg", np.full((200, 200, 3), 90, np.uint8))
    with pytest.raises(FacelabError, match="no face found"):
        sort_faceset(fs, "identity", photo=blank)
    with pytest.raises(FacelabError, match="unknown sort"):
        sort_faceset(fs, "colour")


def test_renaming_twice_replaces_the_rank_prefix(fs):
    before = {p.name: m.to_dict() for p, m in load_metas(fs)}
    apply_order(fs, sort_faceset(fs, "blur"))
    first = _names(face_files(fs))
    assert all(re.fullmatch(r"\d{5}_[a-z].*", n) for n in first)
    assert first[-1] == "00007_hopper_blur_0.jpg"
    order = sort_faceset(fs, "yaw")
    apply_order(fs, order)
    after = dict(load_metas(fs))
    names = _names(after)
    assert len(names) == 8 and all(re.fullmatch(r"\d{5}_[a-z].*", n) for n in names)
    assert names == [f"{r:05d}_{strip_rank(p.name)}" for r, p in enumerate(order)]  # rank = yaw order
    assert {n[6:]: m.to_dict() for n, m in zip(names, after.values())} == before  # metadata intact
    assert not (fs / SORT_TMP_DIR).exists()
    with sqlite3.connect(fs / CACHE_NAME) as con:  # the cache followed the renames
        assert {n for (n,) in con.execute("SELECT name FROM faces")} == set(names)


def test_order_file_mode_renames_nothing(fs, tmp_path):
    order = sort_faceset(fs, "blur")
    txt = tmp_path / "order.txt"
    assert cli(["faceset", "sort", str(fs), "--by", "blur", "--order-file", str(txt)]) == 0
    assert txt.read_text().splitlines() == _names(order)
    assert _names(face_files(fs)) == ALL


def test_rename_never_overwrites_and_finishes_an_interrupted_sort(fs):
    shutil.copy2(fs / "astro_0.jpg", fs / "00000_hopper_0.jpg")  # a stranger holding a target name
    with pytest.raises(FacesetError, match="not part of the sort"):
        apply_order(fs, [fs / "hopper_0.jpg"])
    assert (fs / "hopper_0.jpg").is_file() and len(face_files(fs)) == 9
    (fs / "00000_hopper_0.jpg").unlink()
    # a crash between the two phases leaves faces parked under their final names; the next sort finishes
    (fs / SORT_TMP_DIR).mkdir()
    (fs / "astro_0.jpg").rename(fs / SORT_TMP_DIR / "00003_astro_0.jpg")
    assert len(load_metas(fs)) == 7
    apply_order(fs, sort_faceset(fs, "blur"))
    assert len(face_files(fs)) == 8 and not (fs / SORT_TMP_DIR).exists()


def test_strip_rank_tells_prefixes_from_numeric_names():
    assert strip_rank("00003_hopper_0.jpg", "hopper") == "hopper_0.jpg"
    assert strip_rank("00001_0.jpg", "00001") == "00001_0.jpg"  # face of frame 00001.png, never sorted
    assert strip_rank("00001_00001_0.jpg", "00001") == "00001_0.jpg"
    assert strip_rank("00012_x.jpg", None) == "x.jpg" and strip_rank("clip_000123_0.jpg", "clip") == "clip_000123_0.jpg"


# --- filter and trash ----------------------------------------------------------------------------------------------


def test_filter_rejects_faces_outside_the_ranges(fs, tmp_path):
    _set_meta(fs / "astro_flip_0.jpg", yaw=-48.0)
    _set_meta(fs / "hopper_flip_0.jpg", yaw=41.0)
    assert _names(filter_faceset(fs, yaw=(-30, 30))) == ["astro_flip_0.jpg", "hopper_flip_0.jpg"]
    assert _names(filter_faceset(fs, yaw=(-50, 30))) == ["hopper_flip_0.jpg"]
    assert set(_names(filter_faceset(fs, pitch=(-15, 15)))) == set(ASTRO)  # the astronaut looks down ~21 degrees
    assert _names(filter_faceset(fs, min_blur=3000)) == ["hopper_blur_0.jpg"]
    with pytest.raises(FacelabError, match="nothing to filter"):
        filter_faceset(fs)
    with pytest.raises(FacelabError, match="MIN is above MAX"):
        filter_faceset(fs, yaw=(10, -10))
    trash = tmp_path / "trash"
    assert cli(["faceset", "filter", str(fs), "--yaw", "-30", "30", "--trash", str(trash)]) == 0
    assert sorted(_names(trash.iterdir())) == ["astro_flip_0.jpg", "hopper_flip_0.jpg"]
    assert len(face_files(fs)) == 6


def test_move_to_trash_never_overwrites(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "trash").mkdir()
    (tmp_path / "trash" / "x.jpg").write_bytes(b"old")
    (tmp_path / "a" / "x.jpg").write_bytes(b"new")
    moved = move_to_trash([tmp_path / "a" / "x.jpg"], tmp_path / "trash")
    assert _names(moved) == ["x~1.jpg"] and (tmp_path / "trash" / "x.jpg").read_bytes() == b"old"
    assert not (tmp_path / "a" / "x.jpg").exists()


# --- dedupe --------------------------------------------------------------------------------------------------------


def test_dedupe_keeps_the_sharper_and_cli_moves_duplicates(fs, tmp_path):
    dups = find_duplicates(fs, threshold=0.05)  # the sharpened copy differs by ~0.02: above the video default
    # the sharpened astronaut beats the plain one; exact copies tie on sharpness, so name order keeps hopper_0
    assert [(d.name, k.name) for d, k in dups] == [
        ("astro_0.jpg", "astro_sharp_0.jpg"),
        ("hopper_copy_0.jpg", "hopper_0.jpg"),
    ]
    assert find_duplicates(fs, threshold=0.001) == [(fs / "hopper_copy_0.jpg", fs / "hopper_0.jpg")]
    trash = tmp_path / "trash"
    assert cli(["faceset", "dedupe", str(fs), "--threshold", "0.05", "--trash", str(trash)]) == 0
    assert sorted(_names(trash.iterdir())) == ["astro_0.jpg", "hopper_copy_0.jpg"]
    assert len(face_files(fs)) == 6 and find_duplicates(fs, threshold=0.05) == []


def test_pair_pruning_matches_brute_force():
    rng = np.random.default_rng(0)
    base = rng.random((150, 64, 64), dtype=np.float32)
    x = np.concatenate([base, np.clip(base[:50] + rng.normal(0, 0.05, (50, 64, 64)), 0, 1).astype(np.float32)])
    x[:20] *= 0.3  # a spread of brightness, so the sorted sweep has work to do
    t = 0.045
    d = np.stack([np.abs(x - xi).mean((1, 2)) for xi in x])
    want = {(i, j) for i, j in zip(*np.nonzero(d < t)) if i < j}
    assert len(want) > 10
    # the cheap bounds never lose a true pair, and the verifier keeps exactly the true ones
    candidates = candidate_pairs(x, t)
    assert want <= {tuple(p) for p in candidates.tolist()}
    verify = verifier(x, t)
    assert {(i, j) for i, j in candidates.tolist() if len(verify(i, np.array([j])))} == want
    # the lazy path find_duplicates takes (candidates, verified per keeper) claims exactly what the full pairs do
    blur = np.random.default_rng(1).random(len(x))
    lazy = claim_duplicates(len(x), candidates, blur, verify)
    assert lazy == claim_duplicates(len(x), np.array(sorted(want)), blur) and len(lazy) > 10


def test_duplicates_do_not_chain():
    # 0 ~ 1 ~ 2 but 0 !~ 2: the sharpest keeper claims only its own neighbours
    pairs = np.array([[0, 1], [1, 2]])
    assert claim_duplicates(3, pairs, np.array([3.0, 2.0, 1.0])) == {1: 0}
    assert claim_duplicates(3, pairs, np.array([1.0, 3.0, 2.0])) == {0: 1, 2: 1}


# --- unreadable faces: one policy for every command ---------------------------------------------------------------


def _cut_in_half(path: Path) -> None:
    """A face file cut in half: its metadata (at the front) still reads, its pixels do not."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "args",
    [
        ["info"],
        ["info", "--json"],
        ["sort", "--by", "blur"],
        ["sort", "--by", "hist"],
        ["sort", "--by", "identity", "--photo", "PHOTO"],
        ["sort", "--by", "yaw", "--order-file", "ORDER"],
        ["dedupe", "--threshold", "0.05", "--trash", "TRASH"],
        ["filter", "--min-blur", "1e9", "--trash", "TRASH"],  # would reject every face, the broken ones too
        ["coverage", "DST", "--no-plot"],
    ],
    ids=lambda a: " ".join(a[:3]),
)
def test_unreadable_faces_are_skipped_named_and_counted_by_every_command(fs, tmp_path, hopper, capsys, caplog, args):
    broken = ["astro_rot_0.jpg", "hopper_flip_0.jpg"]
    for name in broken:
        _cut_in_half(fs / name)
    before = {n: (fs / n).read_bytes() for n in broken}
    subs = {
        "PHOTO": str(_write(tmp_path / "grace.jpg", hopper)),
        "ORDER": str(tmp_path / "order.txt"),
        "TRASH": str(tmp_path / "trash"),
        "DST": str(fs),
    }
    argv = ["faceset", args[0], str(fs), *[subs.get(a, a) for a in args[1:]]]
    with caplog.at_level(logging.WARNING):
        assert cli(argv) == 0
    out = capsys.readouterr().out
    for name in broken:  # one warning naming each file, and the file itself untouched, under its own name
        assert sum(name in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING) >= 1
        assert (fs / name).read_bytes() == before[name]
    if "--json" in args:
        assert sorted(Path(p).name for p in json.loads(out)["unreadable"]) == broken
        assert json.loads(out)["count"] == 6
    elif args[0] == "coverage":  # the dst is the same folder: each broken face is met twice, counted once
        assert "2 unreadable faces skipped: fs/astro_rot_0.jpg, fs/hopper_flip_0.jpg\n" in out
    else:
        assert "2 unreadable faces skipped: astro_rot_0.jpg, hopper_flip_0.jpg" in out
    if args[0] == "sort" and "--order-file" not in args:
        names = _names(face_files(fs))
        assert names[-2:] == broken and all(re.fullmatch(r"\d{5}_.*", n) for n in names[:-2])
    if "TRASH" in args:
        assert not set(broken) & set(_names((tmp_path / "trash").iterdir()))


def test_no_readable_face_at_all_is_one_error(fs):
    for p in face_files(fs):
        _cut_in_half(p)
    for call in (
        lambda: faceset_info(fs),
        lambda: sort_faceset(fs, "hist"),
        lambda: find_duplicates(fs),
        lambda: filter_faceset(fs, min_blur=1),
    ):
        with pytest.raises(FacesetError, match=r"no readable faces \(8 unreadable faces skipped: astro_0.jpg"):
            call()


def test_a_face_whose_pixels_are_corrupt_but_whole_is_skipped_by_the_pixel_sorts(fs):
    def break_pixels(path: Path) -> None:
        data = bytearray(path.read_bytes())
        sof = data.index(b"\xff\xc0")
        data[sof + 5 : sof + 9] = bytes(4)  # a 0 x 0 frame: every marker and the end are in place, nothing decodes
        path.write_bytes(bytes(data))

    break_pixels(fs / "astro_0.jpg")
    unreadable: list[Path] = []
    assert "astro_0.jpg" not in _names(sort_faceset(fs, "hist", unreadable=unreadable))
    assert _names(unreadable) == ["astro_0.jpg"]
    assert len(sort_faceset(fs, "blur")) == 8  # the metadata-only sorts cannot tell, and need not
    for p in face_files(fs):
        if p.name != "astro_0.jpg":
            break_pixels(p)
    with pytest.raises(FacesetError, match="no readable faces"):
        sort_faceset(fs, "hist")
