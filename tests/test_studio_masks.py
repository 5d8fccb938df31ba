"""The studio's mask editor through its HTTP API: polygons saved into a real face's metadata and read back (the
pixels untouched, ``mask train``'s label rule applies to them), bad polygons refused with one line and nothing
written, CSRF required, paths outside the workspace refused, previous/next in the grid's order."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from studio_browser import copy_faces, write_variant

from conftest import snapshot
from facelab.faceset.meta import JPEG_APP11, encode_xseg_mask
from facelab.faceset.store import read_meta
from facelab.imaging.masks import polygon_mask
from facelab.mask.samples import has_polygons
from facelab.studio.app import create_app

EXCLUDE = {"type": "exclude", "points": [[30, 70], [90, 70], [90, 110], [30, 110]]}
INCLUDE = {"type": "include", "points": [[10, 10], [118, 10], [118, 120], [10, 120]]}


@pytest.fixture
def ws(tmp_path: Path, studio_faces: Path) -> Path:
    w = tmp_path / "ws"
    copy_faces(studio_faces, w / "fs")
    write_variant(studio_faces, w / "fs" / "syn_0.jpg", "astro_0.jpg", synthetic=True, yaw=40.0)
    return w


@pytest.fixture
def c(ws: Path) -> TestClient:
    return TestClient(create_app(ws), base_url="http://127.0.0.1")


def csrf(c: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": re.search(r'name="csrf-token" content="([^"]+)"', c.get("/").text).group(1)}


def pixels(data: bytes) -> bytes:
    """The JPEG without its facelab APP11 segments: what the image decoder reads."""
    out, i = bytearray(data[:2]), 2
    while data[i] == 0xFF and data[i + 1] not in (0xDA, 0xD9):
        n = 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        if int.from_bytes(data[i : i + 2], "big") != JPEG_APP11:
            out += data[i : i + n]
        i += n
    return bytes(out + data[i:])


def test_polygons_round_trip_into_the_face_file(c: TestClient, ws: Path) -> None:
    face = ws / "fs" / "hopper_0.jpg"
    before = face.read_bytes()
    r = c.get("/api/masks", params={"face": "fs/hopper_0.jpg"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["width"], got["height"], got["masks"], got["has_xseg"]) == (128, 128, [], False)
    assert got["faceset"] == "fs" and got["name"] == "hopper_0.jpg"

    r = c.post("/api/masks", json={"face": "fs/hopper_0.jpg", "masks": [INCLUDE, EXCLUDE]}, headers=csrf(c))
    assert r.status_code == 200, r.text
    assert r.json()["saved"] == 2
    meta = read_meta(face)  # from disk
    assert meta.masks == [INCLUDE, EXCLUDE]
    assert pixels(face.read_bytes()) == pixels(before) and face.read_bytes() != before  # metadata only
    assert not list(face.parent.glob(".*.tmp"))  # written atomically, nothing left beside it
    assert has_polygons(meta)  # `mask train` counts it as labelled
    label = polygon_mask((128, 128), meta.masks)  # includes, then excludes: the exclude wins
    assert label[20, 20] == 1 and label[90, 60] == 0
    assert c.get("/api/masks", params={"face": "fs/hopper_0.jpg"}).json()["masks"] == [INCLUDE, EXCLUDE]
    assert c.get("/api/face", params={"faceset": "fs", "name": "hopper_0.jpg"}).json()["meta"]["masks"] == [
        INCLUDE,
        EXCLUDE,
    ]

    r = c.post("/api/masks", json={"face": "fs/hopper_0.jpg", "masks": []}, headers=csrf(c))  # cleared
    assert r.status_code == 200 and read_meta(face).masks == []
    assert pixels(face.read_bytes()) == pixels(before)


def test_a_save_keeps_the_stored_mask_and_every_other_field(c: TestClient, ws: Path, studio_faces: Path) -> None:
    xs = encode_xseg_mask(np.ones((128, 128), bool))
    face = write_variant(studio_faces, ws / "fs" / "x_0.jpg", "hopper_0.jpg", xseg_mask=xs, yaw=12.5)
    assert c.get("/api/masks", params={"face": "fs/x_0.jpg"}).json()["has_xseg"] is True
    r = c.post("/api/masks", json={"face": "fs/x_0.jpg", "masks": [EXCLUDE]}, headers=csrf(c))
    assert r.status_code == 200, r.text
    meta = read_meta(face)
    assert meta.masks == [EXCLUDE] and meta.xseg_mask == xs and meta.yaw == 12.5


@pytest.mark.parametrize(
    ("masks", "says"),
    [
        ([{"type": "both", "points": EXCLUDE["points"]}], "type 'both': one of include, exclude"),
        ([{"type": "include", "points": [[1, 1], [5, 5]]}], "2 points, a polygon needs at least 3"),
        ([{"type": "include"}], "no points"),
        ([{"type": "exclude", "points": [[1, 1], [5, 5], [200, 5]]}], "(200, 5) lies outside the 128x128 image"),
        ([{"type": "exclude", "points": [[1, 1], [5, 5], [-1, 5]]}], "outside the 128x128 image"),
        ([{"type": "exclude", "points": [[1, 1], [5, 5], ["a", 5]]}], "is not an [x, y] pair of numbers"),
        ([{"type": "exclude", "points": [[1, 1], [5, 5], [True, 5]]}], "is not an [x, y] pair of numbers"),
        ([{"type": "exclude", "points": [[1, 1], [5, 5], [5, 5, 5]]}], "is not an [x, y] pair of numbers"),
        ([INCLUDE, "square"], "polygon 2: not an object"),
    ],
)
def test_bad_polygons_are_refused_and_nothing_is_written(c: TestClient, ws: Path, masks, says: str) -> None:
    before = snapshot(ws / "fs")
    r = c.post("/api/masks", json={"face": "fs/hopper_0.jpg", "masks": masks}, headers=csrf(c))
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert says in err and "\n" not in err and err.startswith("fs/hopper_0.jpg: polygon")
    assert snapshot(ws / "fs") == before


def test_non_finite_coordinates_are_refused(c: TestClient, ws: Path) -> None:
    before = snapshot(ws / "fs")
    body = '{"face": "fs/hopper_0.jpg", "masks": [{"type": "include", "points": [[1, 1], [5, 5], [NaN, 5]]}]}'
    headers = {**csrf(c), "Content-Type": "application/json"}
    r = c.post("/api/masks", content=body, headers=headers)
    assert r.status_code == 422 and "not a finite point" in r.json()["error"], r.text
    r = c.post("/api/masks", content=body.replace("NaN", "1e999"), headers=headers)  # parses as inf
    assert r.status_code == 422, r.text
    assert snapshot(ws / "fs") == before


def test_a_save_needs_the_csrf_token(c: TestClient, ws: Path) -> None:
    before = snapshot(ws / "fs")
    body = {"face": "fs/hopper_0.jpg", "masks": [EXCLUDE]}
    c.get("/")  # a session, but no token sent
    r = c.post("/api/masks", json=body)
    assert r.status_code == 403 and "CSRF" in r.json()["error"]
    r = c.post("/api/masks", json=body, headers={"X-CSRF-Token": "0" * 64})
    assert r.status_code == 403
    r = c.post("/api/masks", json=body, headers={**csrf(c), "Origin": "http://evil.example"})
    assert r.status_code == 403 and "another site" in r.json()["error"]
    assert snapshot(ws / "fs") == before


@pytest.mark.parametrize("face", ["../outside.jpg", "/etc/passwd", "fs/../../outside.jpg", ".facelab-studio/x.jpg"])
def test_paths_outside_the_workspace_are_refused(c: TestClient, ws: Path, face: str) -> None:
    outside = ws.parent / "outside.jpg"
    outside.write_bytes((ws / "fs" / "hopper_0.jpg").read_bytes())
    before = outside.read_bytes()
    assert c.get("/api/masks", params={"face": face}).status_code in (403, 404)
    r = c.post("/api/masks", json={"face": face, "masks": [EXCLUDE]}, headers=csrf(c))
    assert r.status_code in (403, 404) and "\n" not in r.json()["error"]
    assert outside.read_bytes() == before
    assert c.get(f"/masks/{face}", headers={"Accept": "text/html"}).status_code in (403, 404)


def test_a_symlink_out_of_the_workspace_is_refused(c: TestClient, ws: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.jpg"
    outside.write_bytes((ws / "fs" / "hopper_0.jpg").read_bytes())
    (ws / "fs" / "link_0.jpg").symlink_to(outside)
    before = outside.read_bytes()
    r = c.post("/api/masks", json={"face": "fs/link_0.jpg", "masks": [EXCLUDE]}, headers=csrf(c))
    assert r.status_code == 403 and outside.read_bytes() == before


def test_a_broken_or_foreign_face_is_refused_with_one_line(c: TestClient, ws: Path) -> None:
    data = (ws / "fs" / "hopper_0.jpg").read_bytes()
    (ws / "fs" / "cut_0.jpg").write_bytes(data[: len(data) // 2])
    (ws / "notes.txt").write_text("x")
    h = csrf(c)
    r = c.post("/api/masks", json={"face": "fs/cut_0.jpg", "masks": [EXCLUDE]}, headers=h)
    assert r.status_code == 422 and "cut short" in r.json()["error"]
    assert (ws / "fs" / "cut_0.jpg").read_bytes() == data[: len(data) // 2]
    assert c.post("/api/masks", json={"face": "notes.txt", "masks": []}, headers=h).status_code == 404
    r = c.post("/api/masks", json={"face": "fs/hopper_0.jpg"}, headers=h)
    assert r.status_code == 422 and "masks" in r.json()["error"]


def test_previous_and_next_follow_the_grids_order(c: TestClient) -> None:
    def nb(face: str, **q) -> dict:
        r = c.get("/api/masks/neighbors", params={"face": face, **q})
        assert r.status_code == 200, r.text
        return r.json()

    assert nb("fs/hopper_0.jpg") == {
        "face": "fs/hopper_0.jpg",
        "index": 1,
        "count": 3,
        "prev": "fs/astro_0.jpg",
        "next": "fs/syn_0.jpg",
    }
    assert nb("fs/astro_0.jpg")["prev"] is None and nb("fs/syn_0.jpg")["next"] is None
    by_yaw = nb("fs/syn_0.jpg", sort="yaw")  # yaw 40 first, as the grid sorted by yaw
    assert by_yaw["index"] == 0 and by_yaw["prev"] is None
    assert nb("fs/hopper_0.jpg", synthetic="real")["next"] is None  # the grid's filter applies
    outside = nb("fs/syn_0.jpg", synthetic="real")  # not in the filtered view: next is its first face
    assert outside["index"] == -1 and outside["next"] == "fs/astro_0.jpg"
    r = c.get("/api/masks/neighbors", params={"face": "fs/hopper_0.jpg", "synthetic": "maybe"})
    assert r.status_code == 400


def test_the_editor_page_and_the_panel_link(c: TestClient) -> None:
    r = c.get("/masks/fs/hopper_0.jpg?sort=yaw")
    assert r.status_code == 200
    html = r.text
    for testid in ("mask-canvas", "mask-save", "mask-keys"):
        assert f'data-testid="{testid}"' in html
    assert 'data-face="fs/hopper_0.jpg"' in html and "/static/mask_editor.js" in html
    assert "Ctrl+Z" in html and "copy the polygons of the previous face" in html
    assert c.get("/static/mask_editor.js").status_code == 200
    assert "mask-editor-link" in c.get("/static/grid.js").text
    assert c.get("/masks/fs/nobody_0.jpg").status_code == 404
