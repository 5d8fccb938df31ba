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
