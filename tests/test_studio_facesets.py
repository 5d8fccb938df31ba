"""facelab studio's faceset pages through its HTTP API: the workspace's facesets, the grid listing (sorted by the
faceset tools' keys, filtered by pose, blur and synthetic), thumbnails cached on disk, trash and restore on disk,
broken faces shown as broken while the rest works, and the face panel's metadata."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from studio_browser import copy_faces, write_variant

from conftest import snapshot
from facelab.faceset.meta import encode_xseg_mask
from facelab.faceset.sort import sort_faceset
from facelab.studio import listing
from facelab.studio.app import create_app

# name: (yaw, pitch, blur, synthetic)
POSES = {
    "a_0.jpg": (-30.0, 5.0, 120.0, False),
    "b_0.jpg": (0.0, -10.0, 300.0, False),
    "c_0.jpg": (25.0, 0.0, 50.0, True),
    "d_0.jpg": (10.0, 20.0, 200.0, True),
    "e_0.jpg": (45.0, -5.0, 80.0, False),
}


@pytest.fixture
def ws(tmp_path: Path, studio_faces: Path) -> Path:
    """Workspace: ``people/fs`` (five faces of known pose, blur and synthetic flag), ``raw`` (the two extracted
    faces), a folder of plain pictures and a hidden faceset (neither a faceset to list)."""
    w = tmp_path / "ws"
    for name, (yaw, pitch, blur, syn) in POSES.items():
        base = "astro_0.jpg" if name < "c" else "hopper_0.jpg"
        write_variant(studio_faces, w / "people" / "fs" / name, base, yaw=yaw, pitch=pitch, blur=blur, synthetic=syn)
    copy_faces(studio_faces, w / "raw")
    (w / "pictures").mkdir()
    shutil.copyfile(Path(__file__).parent / "conftest.py", w / "pictures" / "notes.txt")
    (w / "pictures" / "plain.png").write_bytes(_plain_png())
    copy_faces(studio_faces, w / ".hidden")
    return w


def _plain_png() -> bytes:
    import cv2
    import numpy as np

    return cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()


@pytest.fixture
def c(ws: Path) -> TestClient:
    return TestClient(create_app(ws), base_url="http://127.0.0.1")


def csrf(c: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": re.search(r'name="csrf-token" content="([^"]+)"', c.get("/").text).group(1)}


def names(c: TestClient, **params) -> list[str]:
    r = c.get("/api/faces", params={"faceset": "people/fs", **params})
    assert r.status_code == 200, r.text
    return r.json()["names"]


# --- home --------------------------------------------------------------------------------------------------------


def test_home_lists_the_facesets_by_folder_name(c: TestClient) -> None:
    html = c.get("/").text
    assert re.findall(r'href="(/faceset/[^"]*)"', html) == ["/faceset/people/fs", "/faceset/raw"]
    assert ">fs</a>" in html and ">raw</a>" in html
    assert c.get("/faceset/people/fs").status_code == 200


def test_the_workspace_itself_may_be_a_faceset(studio_faces: Path, tmp_path: Path) -> None:
    ws = copy_faces(studio_faces, tmp_path / "only")
    c = TestClient(create_app(ws), base_url="http://127.0.0.1")
    assert 'href="/faceset/"' in c.get("/").text
    assert c.get("/api/faces", params={"faceset": ""}).json()["names"] == ["astro_0.jpg", "hopper_0.jpg"]


# --- listing: sort and filter ------------------------------------------------------------------------------------


def test_sorts_are_the_faceset_tools_orders(c: TestClient, ws: Path) -> None:
    assert names(c) == sorted(POSES)
    assert names(c, reverse=True) == sorted(POSES, reverse=True)
    for key in ("yaw", "pitch", "blur", "size"):  # the same key functions as `facelab faceset sort`
        assert names(c, sort=key) == [p.name for p in sort_faceset(ws / "people" / "fs", key)], key
    assert names(c, sort="yaw") == ["e_0.jpg", "c_0.jpg", "d_0.jpg", "b_0.jpg", "a_0.jpg"]
    assert names(c, sort="yaw", reverse=True) == ["a_0.jpg", "b_0.jpg", "d_0.jpg", "c_0.jpg", "e_0.jpg"]
    hist = names(c, sort="hist")  # through faceset.sort.order_faces: reads the pixels
    assert hist == [p.name for p in sort_faceset(ws / "people" / "fs", "hist")]
    r = c.get("/api/faces", params={"faceset": "people/fs", "sort": "yaw"}).json()
    assert r["key"] == [45.0, 25.0, 10.0, 0.0, -30.0] and r["total"] == 5


def test_pixel_sorts_are_kept_until_a_face_is_new(c: TestClient, ws: Path, monkeypatch) -> None:
    calls = []
    real = listing.order_faces
    monkeypatch.setattr(listing, "order_faces", lambda *a: calls.append(1) or real(*a))
    first = names(c, sort="hist")
    assert names(c, sort="hist", synthetic="real") == [n for n in first if not POSES[n][3]]  # filtered, not ranked
    h = csrf(c)
    batch = c.post("/api/trash", json={"faceset": "people/fs", "names": [first[1]]}, headers=h).json()["batch"]
    assert names(c, sort="hist") == first[:1] + first[2:]
    c.post("/api/restore", json={"faceset": "people/fs", "batch": batch}, headers=h)
    assert names(c, sort="hist") == first and len(calls) == 1
    shutil.copyfile(ws / "raw" / "hopper_0.jpg", ws / "people" / "fs" / "new_0.jpg")
    assert "new_0.jpg" in names(c, sort="hist") and len(calls) == 2


def test_identity_sort_ranks_the_reference_person_first(c: TestClient, ws: Path, hopper) -> None:
    import cv2

    cv2.imwrite(str(ws / "pictures" / "grace.png"), cv2.cvtColor(hopper, cv2.COLOR_RGB2BGR))
    order = names(c, sort="identity", photo="pictures/grace.png")
    assert set(order[:3]) == {"c_0.jpg", "d_0.jpg", "e_0.jpg"}  # the faces made from Grace Hopper's
    r = c.get("/api/faces", params={"faceset": "people/fs", "sort": "identity", "photo": "../grace.png"})
    assert r.status_code == 403


def test_filters_by_pose_blur_and_synthetic(c: TestClient) -> None:
    assert names(c, yaw_min=-10, yaw_max=30) == ["b_0.jpg", "c_0.jpg", "d_0.jpg"]
    assert names(c, pitch_min=0) == ["a_0.jpg", "c_0.jpg", "d_0.jpg"]
    assert names(c, min_blur=100) == ["a_0.jpg", "b_0.jpg", "d_0.jpg"]
    assert names(c, synthetic="synthetic") == ["c_0.jpg", "d_0.jpg"]
    assert names(c, synthetic="real", sort="blur") == ["b_0.jpg", "a_0.jpg", "e_0.jpg"]
    r = c.get("/api/faces", params={"faceset": "people/fs", "min_blur": 1000}).json()
    assert r["names"] == [] and r["total"] == 5


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"sort": "colour"}, 400, "unknown sort 'colour'"),
        ({"sort": "identity"}, 400, "needs a reference photo"),
        ({"yaw_min": 30, "yaw_max": -30}, 400, "minimum is above the maximum"),
        ({"yaw_min": "left"}, 422, "yaw_min"),
        ({"synthetic": "maybe"}, 400, "synthetic='maybe'"),
        ({"faceset": "nope"}, 404, "no such file or folder"),
        ({"faceset": "people/fs/a_0.jpg"}, 404, "not a faceset folder"),
    ],
)
def test_bad_listing_requests_are_one_line(c: TestClient, params: dict, status: int, says: str) -> None:
    r = c.get("/api/faces", params={"faceset": "people/fs", **params})
    assert r.status_code == status and says in r.json()["error"] and "\n" not in r.json()["error"]


def test_the_listing_follows_the_disk(c: TestClient, ws: Path) -> None:
    assert len(names(c)) == 5
    (ws / "people" / "fs" / "b_0.jpg").unlink()  # by hand, or by a CLI command
    shutil.copyfile(ws / "raw" / "hopper_0.jpg", ws / "people" / "fs" / "z_0.jpg")
    assert names(c) == ["a_0.jpg", "c_0.jpg", "d_0.jpg", "e_0.jpg", "z_0.jpg"]


def test_the_face_index_is_kept_across_restarts(ws: Path, monkeypatch) -> None:
    c1 = TestClient(create_app(ws), base_url="http://127.0.0.1")
    first = c1.get("/api/faces", params={"faceset": "people/fs", "sort": "blur"}).json()
    assert (ws / ".facelab-studio" / "faces.sqlite").is_file()

    def no_reads(*a, **k):
        raise AssertionError("a face was read again although the index had it")

    monkeypatch.setattr(listing, "read_row", no_reads)
    c2 = TestClient(create_app(ws), base_url="http://127.0.0.1")
    assert c2.get("/api/faces", params={"faceset": "people/fs", "sort": "blur"}).json() == first


def test_a_corrupt_index_is_rebuilt(ws: Path) -> None:
    (ws / ".facelab-studio").mkdir()
    (ws / ".facelab-studio" / "faces.sqlite").write_bytes(b"not a database" * 100)
    c = TestClient(create_app(ws), base_url="http://127.0.0.1")
    assert names(c) == sorted(POSES)


# --- thumbnails --------------------------------------------------------------------------------------------------


def test_thumbnails_are_cached_on_disk(c: TestClient, ws: Path) -> None:
    before = snapshot(ws / "people")
    r = c.get("/thumb/people/fs/a_0.jpg?v=1")
    assert (
        r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and "immutable" in r.headers["cache-control"]
    )
    cached = list((ws / ".facelab-studio" / "thumbs").rglob("*.jpg"))
    assert len(cached) == 1 and cached[0].read_bytes() == r.content
    stamp = cached[0].stat().st_mtime_ns
    assert c.get("/thumb/people/fs/a_0.jpg").content == r.content
    assert cached[0].stat().st_mtime_ns == stamp  # served from the cache, not made again
    import cv2
    import numpy as np

    thumb = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert max(thumb.shape[:2]) == 128
    assert snapshot(ws / "people") == before  # faces are only read
    write_variant(ws / "raw", ws / "people" / "fs" / "a_0.jpg", "hopper_0.jpg")  # the face changes: a new thumbnail
    assert c.get("/thumb/people/fs/a_0.jpg").content != r.content
    assert len(list((ws / ".facelab-studio" / "thumbs").rglob("*.jpg"))) == 2


# --- trash and restore -------------------------------------------------------------------------------------------


def test_trash_moves_faces_out_and_restore_brings_them_back(c: TestClient, ws: Path) -> None:
    fs = ws / "people" / "fs"
    before = snapshot(fs, ())
    r = c.post("/api/trash", json={"faceset": "people/fs", "names": ["b_0.jpg", "d_0.jpg"]}, headers=csrf(c))
    assert r.status_code == 200, r.text
    batch = r.json()["batch"]
    moved = ws / ".facelab-studio" / "trash" / "people" / "fs" / batch
    assert sorted(p.name for p in moved.iterdir()) == ["b_0.jpg", "d_0.jpg"]
    assert not (fs / "b_0.jpg").exists() and not (fs / "d_0.jpg").exists()
    assert names(c) == ["a_0.jpg", "c_0.jpg", "e_0.jpg"]
    listed = c.get("/api/trash", params={"faceset": "people/fs"}).json()["batches"]
    assert listed == [{"faceset": "people/fs", "batch": batch, "names": ["b_0.jpg", "d_0.jpg"]}]
    page = c.get("/trash").text
    assert 'data-testid="restore-button"' in page and "b_0.jpg" in page
    assert c.get(f"/trash-thumb/people/fs/{batch}/b_0.jpg").status_code == 200
    r = c.post("/api/restore", json={"faceset": "people/fs", "batch": batch}, headers=csrf(c))
    assert r.status_code == 200 and r.json()["restored"] == ["b_0.jpg", "d_0.jpg"]
    assert snapshot(fs, ()) == before  # the same files under the same names
    assert not (ws / ".facelab-studio" / "trash" / "people").exists()
    assert names(c) == sorted(POSES)


def test_restore_one_face_of_a_batch(c: TestClient, ws: Path) -> None:
    h = csrf(c)
    batch = c.post("/api/trash", json={"faceset": "people/fs", "names": ["a_0.jpg", "b_0.jpg"]}, headers=h).json()
    r = c.post("/api/restore", json={"faceset": "people/fs", "batch": batch["batch"], "names": ["b_0.jpg"]}, headers=h)
    assert r.json()["restored"] == ["b_0.jpg"] and (ws / "people" / "fs" / "b_0.jpg").exists()
    assert c.get("/api/trash").json()["batches"][0]["names"] == ["a_0.jpg"]


def test_same_name_trashed_twice_keeps_both(c: TestClient, ws: Path) -> None:
    h = csrf(c)
    first = c.post("/api/trash", json={"faceset": "raw", "names": ["hopper_0.jpg"]}, headers=h).json()["batch"]
    shutil.copyfile(ws / "people" / "fs" / "a_0.jpg", ws / "raw" / "hopper_0.jpg")  # a new face, the same name
    second = c.post("/api/trash", json={"faceset": "raw", "names": ["hopper_0.jpg"]}, headers=h).json()["batch"]
    assert first != second and len(c.get("/api/trash", params={"faceset": "raw"}).json()["batches"]) == 2


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"faceset": "people/fs", "names": ["a_0.jpg", "zz_0.jpg"]}, 404, "zz_0.jpg: no such face"),
        ({"faceset": "people/fs", "names": ["../../raw/hopper_0.jpg"]}, 400, "not a face file name"),
        ({"faceset": "people/fs", "names": [".facelab-index.sqlite"]}, 400, "not a face file name"),
        ({"faceset": "people/fs", "names": []}, 400, "no faces selected"),
        ({"faceset": "people/nope", "names": ["a_0.jpg"]}, 404, "no such file or folder"),
        ({"faceset": "people/fs"}, 422, "names"),
    ],
)
def test_bad_trash_requests_change_nothing(c: TestClient, ws: Path, body: dict, status: int, says: str) -> None:
    before = snapshot(ws, ())
    h = csrf(c)
    r = c.post("/api/trash", json=body, headers=h)
    assert r.status_code == status and says in r.json()["error"], r.text
    assert snapshot(ws, ()) == before


def test_restore_never_overwrites_a_face(c: TestClient, ws: Path) -> None:
    h = csrf(c)
    batch = c.post("/api/trash", json={"faceset": "people/fs", "names": ["a_0.jpg", "b_0.jpg"]}, headers=h).json()
    shutil.copyfile(ws / "raw" / "hopper_0.jpg", ws / "people" / "fs" / "b_0.jpg")  # the name is taken again
    before = snapshot(ws, ())
    r = c.post("/api/restore", json={"faceset": "people/fs", "batch": batch["batch"]}, headers=h)
    assert r.status_code == 409 and "nothing restored" in r.json()["error"]
    assert snapshot(ws, ()) == before
    for bad, status in ((batch["batch"][:-1] + "x", 400), ("20000101T000000-abcdef", 404), ("../../x", 400)):
        r = c.post("/api/restore", json={"faceset": "people/fs", "batch": bad}, headers=h)
        assert r.status_code == status, (bad, r.text)
    assert snapshot(ws, ()) == before


# --- broken faces ------------------------------------------------------------------------------------------------


def test_a_corrupt_face_is_shown_broken_and_the_rest_works(c: TestClient, ws: Path) -> None:
    fs = ws / "people" / "fs"
    data = (fs / "a_0.jpg").read_bytes()
    (fs / "cut_0.jpg").write_bytes(data[: len(data) // 2])  # a copy that stopped part-way
    shutil.copyfile(ws / "pictures" / "plain.png", fs / "plain_0.png")  # an image without metadata
    (fs / "junk_0.jpg").write_bytes(b"\xff\xd8" + b"\x00" * 50 + b"\xff\xd9")  # markers, no JPEG
    before = snapshot(fs, ())
    r = c.get("/api/faces", params={"faceset": "people/fs", "sort": "blur"}).json()
    assert r["names"][:5] == ["b_0.jpg", "d_0.jpg", "a_0.jpg", "e_0.jpg", "c_0.jpg"]
    broken = dict(zip(r["names"][5:], r["broken"][5:]))
    assert broken.keys() == {"cut_0.jpg", "junk_0.jpg", "plain_0.png"}
    assert "cut short" in broken["cut_0.jpg"] and "no embedded metadata" in broken["plain_0.png"]
    assert all(b is None for b in r["broken"][:5]) and r["total"] == 8
    for name in broken:
        t = c.get(f"/thumb/people/fs/{name}")
        assert t.status_code in (404, 422) or name == "plain_0.png", (name, t.text)
        info = c.get("/api/face", params={"faceset": "people/fs", "name": name}).json()
        assert info["broken"] and "\n" not in info["broken"] and str(ws) not in info["broken"]
    assert (
        c.get("/thumb/people/fs/cut_0.jpg").json()["error"]
        == "people/fs/cut_0.jpg: cut short (the JPEG has no end marker)"
    )
    assert c.get("/thumb/people/fs/b_0.jpg").status_code == 200
    assert c.get("/faceset/people/fs").status_code == 200
    assert snapshot(fs, ()) == before  # shown, never renamed or moved
    h = csrf(c)
    r = c.post("/api/trash", json={"faceset": "people/fs", "names": ["cut_0.jpg"]}, headers=h)  # but trashable
    assert r.status_code == 200 and not (fs / "cut_0.jpg").exists()


# --- face panel --------------------------------------------------------------------------------------------------


def test_face_panel_metadata_landmarks_and_masks(c: TestClient, ws: Path, studio_faces: Path) -> None:
    import numpy as np

    polys = [
        {"type": "include", "points": [[10, 10], [100, 10], [100, 100]]},
        {"type": "exclude", "points": [[20, 20], [40, 20], [30, 40]]},
    ]
    mask = encode_xseg_mask(np.pad(np.ones((64, 64)), 32))
    write_variant(studio_faces, ws / "people" / "fs" / "m_0.jpg", masks=polys, xseg_mask=mask, extra={"note": "x"})
    info = c.get("/api/face", params={"faceset": "people/fs", "name": "m_0.jpg"}).json()
    m = info["meta"]
    assert info["broken"] is None and info["path"] == "people/fs/m_0.jpg"
    assert len(m["landmarks"]) == 68 and m["size"] == 128 and m["masks"] == polys and m["has_xseg"]
    assert m["extra"] == {"note": "x"} and "xseg_mask" not in m and "mesh" not in m
    png = c.get("/xseg/people/fs/m_0.jpg")
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert c.get("/xseg/people/fs/a_0.jpg").status_code == 404
    full = c.get("/file/people/fs/m_0.jpg")
    assert full.status_code == 200 and full.content == (ws / "people" / "fs" / "m_0.jpg").read_bytes()
    assert c.get("/file/pictures/notes.txt").status_code == 404  # images only
