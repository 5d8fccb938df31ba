"""facelab studio in a real browser (Playwright driving Debian's headless Chromium; skipped with the reason where
either is missing): trash a face from the grid and undo it, keyboard navigation and the face panel, the trash
view, a broken face among good ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from studio_browser import copy_faces, studio_server, wait_for, write_variant


@pytest.fixture
def ws(tmp_path: Path, studio_faces: Path) -> Path:
    w = tmp_path / "ws"
    copy_faces(studio_faces, w / "fs")
    write_variant(studio_faces, w / "fs" / "syn_0.jpg", "astro_0.jpg", synthetic=True, yaw=40.0)
    return w


def tiles(page) -> list[str]:
    return page.eval_on_selector_all('[data-testid="face-tile"]', "els => els.map(e => e.dataset.name)")


def test_trash_a_face_then_restore_it(ws: Path, studio_page) -> None:
    fs = ws / "fs"
    data = (fs / "astro_0.jpg").read_bytes()
    page = studio_page
    with studio_server(ws) as url:
        page.goto(f"{url}/")
        page.get_by_test_id("faceset-link").click()
        page.wait_for_function("() => document.querySelectorAll('[data-testid=face-tile] img').length === 3")
        assert tiles(page) == ["astro_0.jpg", "hopper_0.jpg", "syn_0.jpg"]
        page.locator('[data-testid="face-tile"][data-name="astro_0.jpg"]').click()
        page.get_by_test_id("trash-button").click()  # no confirmation dialog: it is undoable
        assert wait_for(lambda: not (fs / "astro_0.jpg").exists())
        trashed = list((ws / ".facelab-studio" / "trash" / "fs").glob("*/astro_0.jpg"))
        assert len(trashed) == 1 and trashed[0].read_bytes() == data
        page.wait_for_function("() => document.querySelectorAll('[data-testid=face-tile]').length === 2")
        page.get_by_test_id("restore-button").click()  # the undo control that appeared
        assert wait_for(lambda: (fs / "astro_0.jpg").exists())
        assert (fs / "astro_0.jpg").read_bytes() == data and not trashed[0].exists()
        page.wait_for_function("() => document.querySelectorAll('[data-testid=face-tile]').length === 3")
        assert page.get_by_test_id("restore-button").is_hidden()


def test_keyboard_panel_and_the_trash_view(ws: Path, studio_page) -> None:
    fs = ws / "fs"
    page = studio_page
    with studio_server(ws) as url:
        page.goto(f"{url}/faceset/fs?sort=yaw")
        page.wait_for_function("() => document.querySelectorAll('[data-testid=face-tile] img').length === 3")
        assert tiles(page)[0] == "syn_0.jpg"  # yaw 40 first, as `faceset sort --by yaw`
        assert page.locator('[data-testid="face-tile"][data-name="syn_0.jpg"] .syn').count() == 1
        page.keyboard.press("ArrowRight")  # the cursor starts on the first face
        page.keyboard.press("Enter")
        panel = page.get_by_test_id("face-panel")
        panel.wait_for(state="visible")
        page.wait_for_function("() => document.querySelectorAll('.panel .landmarks circle').length === 68")
        second = tiles(page)[1]
        assert panel.locator(".panel-name").text_content() == second
        page.keyboard.press("Escape")
        page.keyboard.press("Delete")  # trashes the face under the cursor
        assert wait_for(lambda: not (fs / second).exists())
        page.goto(f"{url}/trash")
        page.get_by_test_id("trash-item").first.wait_for()
        assert page.get_by_test_id("trash-item").count() == 1
        page.get_by_test_id("restore-button").click()
        assert wait_for(lambda: (fs / second).exists())
        page.get_by_test_id("trash-batch").wait_for(state="detached")


def test_a_broken_face_is_shown_broken_and_the_rest_works(ws: Path, studio_page) -> None:
    fs = ws / "fs"
    data = (fs / "hopper_0.jpg").read_bytes()
    (fs / "cut_0.jpg").write_bytes(data[: len(data) // 2])
    shutil.copyfile(fs / "hopper_0.jpg", fs / "zz_0.jpg")
    page = studio_page
    with studio_server(ws) as url:
        page.goto(f"{url}/faceset/fs")
        page.wait_for_function("() => document.querySelectorAll('[data-testid=face-tile]').length === 5")
        assert tiles(page)[-1] == "cut_0.jpg"  # broken faces follow the others
        broken = page.locator('[data-testid="face-tile"].broken')
        assert broken.count() == 1 and "cut short" in broken.get_attribute("title")
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=face-tile] img')].filter(i => i.complete && i.naturalWidth)"
            ".length === 4"
        )
        assert "1 broken" in page.get_by_test_id("face-count").text_content()
