"""Issue 18's acceptance test: the studio's whole loop in one browser session (Playwright driving Debian's headless
Chromium; skipped with the reason where either is missing). In one workspace it trashes a face (the file moves to
the trash, restore brings it back), draws an exclude polygon (the metadata on disk has it), trains a tiny model
from the jobs form (progress reaches the end, the preview loads), tunes erode over a frame range with that model
and saves, then ``facelab merge --settings`` writes the page's frame bit for bit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from merge_job import FRAMES, merge_job
from studio_browser import copy_faces, studio_server, wait_for
from test_studio_browser_masks import SIDE, click_at, near, open_editor
from test_studio_merge import shown_frame, tune_erode_over_5_to_9

from facelab.cli import main as cli
from facelab.faceset.store import read_meta

ITERS = 6
# the tiny model of tests/merge_job.py (TINY), as jobs-form options
TINY_OPTIONS = (
    "archi=df-ud resolution=64 face-type=full ae-dims=32 e-dims=16 d-dims=16 d-mask-dims=8"
    " batch=4 workers=0 preview-every=2"
)
SOURCE = {"dst": "clips/dst.mp4", "faceset": "clips/dst_fs", "model": "models/loop"}  # the model the job trains


@pytest.fixture
def ws(tmp_path: Path, studio_faces: Path, tmp_path_factory, hopper, astronaut) -> Path:
    job = merge_job(tmp_path_factory, hopper, astronaut)
    w = tmp_path / "ws"
    copy_faces(studio_faces, w / "fs")  # astro_0.jpg, hopper_0.jpg: trashed, restored, masked
    (w / "src").mkdir()
    for i in range(4):  # the job's src: Grace Hopper; its dst: the clip's own faceset
        shutil.copyfile(studio_faces / "hopper_0.jpg", w / "src" / f"src{i}.jpg")
    (w / "clips").mkdir()
    shutil.copyfile(job / "dst.mp4", w / "clips" / "dst.mp4")
    shutil.copytree(job / "dst_fs", w / "clips" / "dst_fs")
    (w / "models").mkdir()  # the job's model folder goes in here (a model's parent must exist)
    return w


def test_the_whole_loop_in_one_browser_session(ws: Path, studio_page, tmp_path: Path) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout  # here: studio_page skips without playwright

    fs = ws / "fs"
    page = studio_page
    with studio_server(ws) as url:
        # 1. trash a face, then restore it
        data = (fs / "astro_0.jpg").read_bytes()
        page.goto(f"{url}/faceset/fs")
        page.wait_for_function("() => document.querySelectorAll('[data-testid=face-tile] img').length === 2")
        page.locator('[data-testid="face-tile"][data-name="astro_0.jpg"]').click()
        page.get_by_test_id("trash-button").click()
        assert wait_for(lambda: not (fs / "astro_0.jpg").exists())
        trashed = list((ws / ".facelab-studio" / "trash" / "fs").glob("*/astro_0.jpg"))
        assert len(trashed) == 1 and trashed[0].read_bytes() == data
        page.wait_for_function("() => document.querySelectorAll('[data-testid=face-tile]').length === 1")
        page.get_by_test_id("restore-button").click()
        assert wait_for(lambda: (fs / "astro_0.jpg").exists())
        assert (fs / "astro_0.jpg").read_bytes() == data and not trashed[0].exists()
        page.wait_for_function("() => document.querySelectorAll('[data-testid=face-tile]').length === 2")

        # 2. draw an exclude polygon in the mask editor and save it into the face file
        face = fs / "hopper_0.jpg"
        square = [[30, 70], [90, 70], [90, 110], [30, 110]]
        open_editor(page, url, "fs/hopper_0.jpg")
        page.keyboard.press("w")  # exclude mode
        assert page.get_attribute("#mask-app", "data-mode") == "exclude"
        for x, y in square:
            click_at(page, x, y)
        click_at(page, SIDE / 2, 90, button="right")  # closes the polygon
        page.get_by_test_id("mask-save").click()
        assert wait_for(lambda: read_meta(face).masks != [])
        (saved,) = read_meta(face).masks  # the metadata on disk
        assert saved["type"] == "exclude" and near(saved["points"], square, page)
        page.wait_for_function("() => document.querySelector('[data-testid=mask-state]').textContent === 'saved'")

        # 3. a tiny training job from the jobs form: progress to the end, the preview loads
        page.goto(f"{url}/jobs")
        page.get_by_test_id("job-src").fill("src")
        page.get_by_test_id("job-dst").fill(SOURCE["faceset"])
        page.get_by_test_id("job-model").fill(SOURCE["model"])
        page.get_by_test_id("job-iters").fill(str(ITERS))
        page.get_by_test_id("job-options").fill(TINY_OPTIONS)
        page.get_by_test_id("job-start").click()
        try:
            page.wait_for_function(
                f"() => document.querySelector('[data-testid=job-progress]').dataset.done === '{ITERS}'",
                timeout=60_000,
            )
        except PlaywrightTimeout:  # the page's message and the job's log say why
            says = page.locator("#message").text_content(), page.get_by_test_id("job-log").inner_text()
            pytest.fail("the job did not finish: {}\nits log:\n{}".format(*says))
        page.wait_for_function(
            "() => document.querySelector('[data-testid=job-status]').dataset.status === 'finished'", timeout=20_000
        )
        page.wait_for_function(
            "() => { const i = document.querySelector('[data-testid=preview-image]');"
            " return !i.hidden && i.complete && i.naturalWidth > 0 }"
        )
        assert page.get_by_test_id("job-progress").inner_text().startswith(f"{ITERS}/{ITERS}")
        assert (ws / SOURCE["model"] / "checkpoint").is_dir() and (ws / SOURCE["model"] / "preview.png").exists()

        # 4. the merge tuner with the trained model: erode 40 over frames 5..9, saved
        frame = tune_erode_over_5_to_9(page, url, ws, SOURCE)
        tuned = json.loads((ws / "tuned.json").read_text())
        assert tuned["source"] == SOURCE
        assert [(r["start"], r["end"], r["settings"]["erode"]) for r in tuned["ranges"]] == [(5, 9, 40)]
        assert tuned["base"]["erode"] == 0
        shown = shown_frame(page)
        assert frame.get_attribute("data-frame") == "5"

    # 5. `facelab merge --settings` (to lossless PNGs) writes the page's frame bit for bit
    out = tmp_path / "out"
    args = ["merge", str(ws / SOURCE["dst"]), "--model", str(ws / SOURCE["model"])]
    assert (
        cli([*args, "--faceset", str(ws / SOURCE["faceset"]), "--settings", str(ws / "tuned.json"), "-o", str(out)])
        == 0
    )
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == FRAMES
    merged = cv2.cvtColor(cv2.imread(str(pngs[5])), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(shown, merged)  # the page's frame, bit for bit
