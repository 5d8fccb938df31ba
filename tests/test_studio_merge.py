"""The studio's merge tuner: its API (render a frame, a cached prediction, save a settings file, CSRF and paths
refused) and, in a real browser, tuning erode over a frame range and saving; in both, ``facelab merge
--settings`` with the saved file then writes the page's frame bit for bit."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from merge_job import FRAMES, merge_job
from studio_browser import studio_server, wait_for

from facelab.cli import main as cli
from facelab.studio.app import create_app

SOURCE = {"dst": "clips/dst.mp4", "faceset": "clips/dst_fs", "model": "models/tiny"}


@pytest.fixture(scope="module")
def job(tmp_path_factory, hopper, astronaut) -> Path:
    return merge_job(tmp_path_factory, hopper, astronaut)


@pytest.fixture
def ws(tmp_path: Path, job: Path) -> Path:
    w = tmp_path / "ws"
    (w / "clips").mkdir(parents=True)
    shutil.copyfile(job / "dst.mp4", w / "clips" / "dst.mp4")
    shutil.copytree(job / "dst_fs", w / "clips" / "dst_fs")
    shutil.copytree(job / "model", w / "models" / "tiny")
    return w


@pytest.fixture
def c(ws: Path) -> TestClient:
    return TestClient(create_app(ws), base_url="http://127.0.0.1")


def csrf(c: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": re.search(r'name="csrf-token" content="([^"]+)"', c.get("/merge").text).group(1)}


def frame_png(c: TestClient, i: int, settings: dict) -> tuple[np.ndarray, dict]:
    r = c.get("/api/merge/frame", params={**SOURCE, "frame": i, "settings": json.dumps(settings)})
    assert r.status_code == 200, r.text
    img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), dict(r.headers)


def merge_with(ws: Path, settings: Path, out: Path) -> list[np.ndarray]:
    """``facelab merge --settings`` to a PNG folder (lossless: the frames merge hands to its writer)."""
    args = ["merge", str(ws / SOURCE["dst"]), "--model", str(ws / SOURCE["model"])]
    assert cli([*args, "--faceset", str(ws / SOURCE["faceset"]), "--settings", str(settings), "-o", str(out)]) == 0
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == FRAMES
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in pngs]


def test_page_lists_the_workspace_videos_facesets_and_models(c):
    page = c.get("/merge").text
    for rel in SOURCE.values():
        assert f'<option value="{rel}">' in page
    assert 'data-testid="merge-setting-erode"' in page and 'data-testid="merge-save"' in page
    assert 'href="/merge"' in c.get("/").text  # in the header of every page


def test_render_save_and_the_cli_gives_the_same_pixels(c, ws, tmp_path):
    h = csrf(c)
    info = c.post("/api/merge/open", json=SOURCE, headers=h).json()
    assert info["frames"] == FRAMES and info["res"] == 64 and info["base"]["blur"] == 64
    base = {**info["base"], "blur": 16}
    tuned = {**base, "erode": 40, "color": "lct"}
    first, head = frame_png(c, 6, base)
    assert head["x-predicted"] == "1" and float(head["x-render-ms"]) > 0
    again, head = frame_png(c, 6, tuned)  # only blending settings changed: the cached prediction
    assert head["x-predicted"] == "0" and (again != first).any()
    assert first.shape == (256, 256, 3)

    body = {**SOURCE, "path": "tuned.json", "base": base, "ranges": [{"start": 4, "end": 8, "settings": tuned}]}
    assert c.post("/api/merge/save", json=body).status_code == 403  # no CSRF token
    r = c.post("/api/merge/save", json=body, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "tuned.json" and "--settings tuned.json" in r.json()["command"]
    saved = json.loads((ws / "tuned.json").read_text())
    assert saved["format"] == "facelab-merge-settings/1" and saved["source"] == SOURCE
    assert saved["ranges"] == [{"start": 4, "end": 8, "settings": tuned}]
    assert c.get("/api/merge/settings", params={"path": "tuned.json"}).json()["ranges"] == saved["ranges"]

    frames = merge_with(ws, ws / "tuned.json", tmp_path / "out")
    for i, settings in ((6, tuned), (3, base), (8, tuned), (9, base)):
        shown, _ = frame_png(c, i, settings)
        np.testing.assert_array_equal(shown, frames[i], err_msg=f"frame {i}")
    np.testing.assert_array_equal(again, frames[6])


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("../out.json", 403, "leaves the workspace"),
        (".hidden/x.json", 403, "hidden"),
        ("notes.txt", 400, "save as a .json file name"),
        ("nofolder/x.json", 404, "no such file or folder"),
        ("clips/dst_fs", 400, "save as a .json"),
    ],
)
def test_save_refuses_paths_outside_or_odd(c, ws, path, status, says):
    (ws / ".hidden").mkdir()
    body = {**SOURCE, "path": path, "base": {}, "ranges": []}
    r = c.post("/api/merge/save", json=body, headers=csrf(c))
    assert r.status_code == status and says in r.json()["error"]


def test_save_refuses_bad_settings_and_other_files(c, ws):
    h = csrf(c)
    body = {**SOURCE, "path": "s.json", "base": {"batch": 2}, "ranges": []}
    r = c.post("/api/merge/save", json=body, headers=h)
    assert r.status_code == 400 and "base.batch: applies to the whole merge" in r.json()["error"]
    (ws / "other.json").write_text('{"not": "settings"}')
    r = c.post("/api/merge/save", json={**body, "base": {}, "path": "other.json"}, headers=h)
    assert r.status_code == 422 and "format is None" in r.json()["error"]
    assert (ws / "other.json").read_text() == '{"not": "settings"}'
    r = c.get("/api/merge/frame", params={**SOURCE, "frame": FRAMES, "settings": "{}"})
    assert r.status_code == 404 and f"0..{FRAMES - 1}" in r.json()["error"]
    r = c.get("/api/merge/frame", params={**SOURCE, "frame": 0, "settings": '{"erode": "x"}'})
    assert r.status_code == 422 and "settings.erode: expected an integer" in r.json()["error"]
    r = c.post("/api/merge/open", json={**SOURCE, "model": "../x"}, headers=h)
    assert r.status_code == 403


# --- in a browser ------------------------------------------------------------------------------------------------


def shown_frame(page) -> np.ndarray:
    """The RGB pixels of the frame the page shows, drawn to a canvas (a blob URL cannot be fetched under the
    studio's CSP)."""
    w, h, rgba = page.evaluate(
        """() => {
            const img = document.querySelector('[data-testid=merge-frame]');
            const c = document.createElement('canvas');
            c.width = img.naturalWidth;
            c.height = img.naturalHeight;
            const g = c.getContext('2d', { willReadFrequently: true });
            g.drawImage(img, 0, 0);
            const d = g.getImageData(0, 0, c.width, c.height).data;
            let s = '';
            for (let i = 0; i < d.length; i++) s += String.fromCharCode(d[i]);
            return [c.width, c.height, btoa(s)];
        }"""
    )
    return np.frombuffer(base64.b64decode(rgba), np.uint8).reshape(h, w, 4)[..., :3]


def tune_erode_over_5_to_9(page, url: str, ws: Path, source: dict[str, str]):
    """In the merge tuner opened on ``source``: scrub to frame 5, set erode 40 for frames 5..9, apply, save as
    tuned.json (waits for the file and the page's merge command); returns the merge-frame locator."""
    page.goto(f"{url}/merge?" + "&".join(f"{k}={v}" for k, v in source.items()))
    frame = page.get_by_test_id("merge-frame")
    page.wait_for_function("() => document.querySelector('[data-testid=merge-frame]').dataset.frame === '0'")
    page.eval_on_selector(  # scrub to frame 5
        '[data-testid="merge-scrub"]', "el => { el.value = '5'; el.dispatchEvent(new Event('input')); }"
    )
    page.wait_for_function("() => document.querySelector('[data-testid=merge-frame]').dataset.frame === '5'")
    page.get_by_test_id("merge-range-start-here").click()
    page.get_by_test_id("merge-range-end").fill("9")
    page.get_by_test_id("merge-setting-erode").fill("40")
    page.get_by_test_id("merge-dirty").wait_for(state="visible")
    page.get_by_test_id("merge-range-apply").click()
    page.get_by_test_id("merge-range").first.wait_for()
    page.wait_for_function(
        "() => JSON.parse(document.querySelector('[data-testid=merge-frame]').dataset.settings || '{}').erode === 40"
    )
    page.get_by_test_id("merge-save-path").fill("tuned.json")
    page.get_by_test_id("merge-save").click()
    assert wait_for(lambda: (ws / "tuned.json").exists())
    page.get_by_test_id("merge-command").wait_for()
    return frame


def test_tune_erode_over_a_range_save_and_merge_reproduces_the_frame(ws, studio_page, tmp_path):
    page = studio_page
    with studio_server(ws) as url:
        frame = tune_erode_over_5_to_9(page, url, ws, SOURCE)
        saved = json.loads((ws / "tuned.json").read_text())
        assert [(r["start"], r["end"], r["settings"]["erode"]) for r in saved["ranges"]] == [(5, 9, 40)]
        assert saved["base"]["erode"] == 0
        shown = shown_frame(page)
        assert frame.get_attribute("data-frame") == "5"
    frames = merge_with(ws, ws / "tuned.json", tmp_path / "out")
    np.testing.assert_array_equal(shown, frames[5])  # the page's frame, bit for bit


def test_a_mask_model_for_the_xseg_modes_and_the_cli_agrees(c, ws, tmp_path):
    """The tuner opened with a mask model renders the xseg-prd modes as ``merge --mask-model`` does."""
    masks = ["mask", "train", "--faceset", str(ws / SOURCE["faceset"]), "--out", str(ws / "models" / "xseg")]
    assert cli([*masks, "--iters", "2", "--generic", "--batch", "2", "--widths", "8,8,8,8,8,8", "--workers", "0"]) == 0
    source = {**SOURCE, "mask_model": "models/xseg"}
    h = csrf(c)
    r = c.post("/api/merge/open", json=SOURCE, headers=h)
    base = {**r.json()["base"], "mask_mode": "xseg-prd"}
    without = c.get("/api/merge/frame", params={**SOURCE, "frame": 5, "settings": json.dumps(base)})
    assert without.status_code == 400 and "mask-model" in without.json()["error"]  # says what is missing
    assert c.post("/api/merge/open", json=source, headers=h).status_code == 200
    r = c.get("/api/merge/frame", params={**source, "frame": 5, "settings": json.dumps(base)})
    assert r.status_code == 200, r.text
    shown = cv2.cvtColor(cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    saved = c.post("/api/merge/save", json={**source, "path": "x.json", "base": base, "ranges": []}, headers=h)
    assert "--mask-model models/xseg" in saved.json()["command"]
    assert json.loads((ws / "x.json").read_text())["source"]["mask_model"] == "models/xseg"
    args = ["merge", str(ws / SOURCE["dst"]), "--model", str(ws / SOURCE["model"]), "--faceset"]
    args += [str(ws / SOURCE["faceset"]), "--mask-model", str(ws / "models" / "xseg"), "--settings", str(ws / "x.json")]
    assert cli([*args, "-o", str(tmp_path / "out")]) == 0
    merged = cv2.cvtColor(cv2.imread(str(sorted((tmp_path / "out").glob("*.png"))[5])), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(shown, merged)
