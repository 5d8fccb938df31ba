"""The jobs page in a real browser (skipped where Chromium or Playwright is missing): start a short training job
from the form, see its progress reach the end over server-sent events and the preview grid load."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from studio_browser import studio_server


@pytest.fixture
def ws(tmp_path: Path, studio_faces: Path) -> Path:
    w = tmp_path / "ws"
    for name, face in (("src", "hopper_0.jpg"), ("dst", "astro_0.jpg")):
        (w / name).mkdir(parents=True)
        for i in range(4):
            shutil.copyfile(studio_faces / face, w / name / f"{name}{i}.jpg")
    return w


def test_start_a_training_job_and_watch_it(ws: Path, studio_page) -> None:
    page = studio_page
    with studio_server(ws) as url:
        page.goto(f"{url}/jobs")
        page.get_by_test_id("job-src").fill("src")
        page.get_by_test_id("job-dst").fill("dst")
        page.get_by_test_id("job-model").fill("m")
        page.get_by_test_id("job-iters").fill("6")
        page.get_by_test_id("job-options").fill(
            "archi=df-ud resolution=64 ae-dims=32 e-dims=16 d-dims=16 d-mask-dims=8 batch=4 workers=0 preview-every=2"
        )
        page.get_by_test_id("job-start").click()
        page.wait_for_function(
            "() => document.querySelector('[data-testid=job-progress]').dataset.done === '6'", timeout=60_000
        )
        page.wait_for_function(
            "() => document.querySelector('[data-testid=job-status]').dataset.status === 'finished'", timeout=20_000
        )
        page.wait_for_function(
            "() => { const i = document.querySelector('[data-testid=preview-image]');"
            " return !i.hidden && i.complete && i.naturalWidth > 0 }"
        )
        assert page.get_by_test_id("job-progress").inner_text().startswith("6/6")
        assert "iteration 6" in page.get_by_test_id("job-progress").inner_text()
        page.reload()  # the job and its log are still there
        page.wait_for_function("() => document.querySelector('[data-testid=job-status]').dataset.status === 'finished'")
        assert "--- finished" in page.get_by_test_id("job-log").inner_text()
        assert page.get_by_test_id("job-item").count() == 1
    assert (ws / "m" / "preview.png").exists()


def test_extract_then_mask_train_from_the_command_forms(tmp_path: Path, hopper, studio_page) -> None:
    """The other commands' forms: pick the command, fill its own fields, start; the CLI's code runs."""
    import cv2
    from playwright.sync_api import expect

    ws = tmp_path / "ws"
    (ws / "photos").mkdir(parents=True)
    cv2.imwrite(str(ws / "photos" / "hopper.png"), cv2.cvtColor(hopper, cv2.COLOR_RGB2BGR))
    page = studio_page
    finished = "() => document.querySelector('[data-testid=job-status]').dataset.status === 'finished'"
    with studio_server(ws) as url:
        page.goto(f"{url}/jobs")
        page.get_by_test_id("job-command").select_option("extract")
        assert page.get_by_test_id("job-src").count() == 0  # the train form's fields are gone
        page.get_by_test_id("job-input").fill("photos")
        page.get_by_test_id("job-output").fill("faces")
        page.get_by_test_id("job-options").fill("size=128")
        page.get_by_test_id("job-start").click()
        expect(page.get_by_test_id("job-title")).to_contain_text("extract")
        page.wait_for_function(finished, timeout=60_000)
        assert len(list((ws / "faces").glob("*.jpg"))) == 1

        page.get_by_test_id("job-command").select_option("mask-train")
        page.get_by_test_id("job-faceset").fill("faces")
        page.get_by_test_id("job-out").fill("xseg")
        page.get_by_test_id("job-iters").fill("2")
        page.get_by_test_id("job-generic").check()
        page.get_by_test_id("job-options").fill("batch=2 widths=8,8,8,8,8,8 preview-every=1 workers=0")
        page.get_by_test_id("job-start").click()
        expect(page.get_by_test_id("job-title")).to_contain_text("mask-train")  # not the extract job's view
        page.wait_for_function(finished, timeout=60_000)
        page.wait_for_function(
            "() => { const i = document.querySelector('[data-testid=preview-image]');"
            " return !i.hidden && i.complete && i.naturalWidth > 0 }"
        )
        assert "iteration 2" in page.get_by_test_id("job-progress").inner_text()
        assert page.get_by_test_id("job-item").count() == 2

        page.get_by_test_id("job-command").select_option("evaluate")
        assert page.get_by_test_id("job-no-fid").is_checked()  # FID is slow on a CPU: off unless asked for
        page.get_by_test_id("job-start").click()  # required fields empty: the browser refuses, nothing starts
        assert page.get_by_test_id("job-item").count() == 2
    assert (ws / "xseg" / "preview.png").exists()
