"""The mask editor in a real browser (Playwright driving Debian's headless Chromium; skipped with the reason where
either is missing): draw an exclude polygon with the mouse and save it into the face file; undo; copy the polygons
of the previous face; previous/next with the keys; the editor opened from the grid's face panel."""

from __future__ import annotations

from pathlib import Path

import pytest
from studio_browser import copy_faces, studio_server, wait_for

from facelab.faceset.store import read_meta, update_meta

SIDE = 128  # the faces' aligned size (studio_faces)


@pytest.fixture
def ws(tmp_path: Path, studio_faces: Path) -> Path:
    w = tmp_path / "ws"
    copy_faces(studio_faces, w / "fs")  # astro_0.jpg, hopper_0.jpg
    return w


def open_editor(page, url: str, face: str) -> None:
    page.goto(f"{url}/masks/{face}")
    page.wait_for_selector(f'#mask-app[data-ready="{face}"]')


def click_at(page, x: float, y: float, button: str = "left") -> None:
    """Click the canvas at image pixel (x, y)."""
    box = page.get_by_test_id("mask-canvas").bounding_box()
    page.mouse.click(box["x"] + x / SIDE * box["width"], box["y"] + y / SIDE * box["height"], button=button)


def polygons(page) -> int:
    return int(page.get_attribute("#mask-app", "data-polygons"))


def near(got: list[list[float]], want: list[list[float]], page) -> bool:
    tol = SIDE / page.get_by_test_id("mask-canvas").bounding_box()["width"] + 0.01  # one screen px
    return len(got) == len(want) and all(abs(a - b) <= tol for p, q in zip(got, want) for a, b in zip(p, q))


def test_draw_an_exclude_polygon_and_save_it(ws: Path, studio_page) -> None:
    face = ws / "fs" / "hopper_0.jpg"
    square = [[30, 70], [90, 70], [90, 110], [30, 110]]
    page = studio_page
    with studio_server(ws) as url:
        open_editor(page, url, "fs/hopper_0.jpg")
        assert page.get_by_test_id("mask-canvas").bounding_box()["width"] > 2 * SIDE  # zoomed to fit
        assert "copy the polygons of the previous face" in page.get_by_test_id("mask-keys").text_content()
        page.keyboard.press("w")  # exclude mode
        assert page.get_attribute("#mask-app", "data-mode") == "exclude"
        for x, y in square:
            click_at(page, x, y)
        click_at(page, 60, 90, button="right")  # closes the polygon
        assert polygons(page) == 1
        assert page.get_by_test_id("mask-state").text_content() == "unsaved changes"
        page.get_by_test_id("mask-save").click()
        assert wait_for(lambda: read_meta(face).masks != [])
        (saved,) = read_meta(face).masks  # the metadata on disk
        assert saved["type"] == "exclude" and near(saved["points"], square, page)
        page.wait_for_function("() => document.querySelector('[data-testid=mask-state]').textContent === 'saved'")


def test_undo_and_copy_from_the_previous_face(ws: Path, studio_page) -> None:
    prev_polys = [
        {"type": "include", "points": [[10.0, 10.0], [118.0, 10.0], [118.0, 120.0], [10.0, 120.0]]},
        {"type": "exclude", "points": [[40.0, 80.0], [80.0, 80.0], [60.0, 110.0]]},
    ]
    update_meta(ws / "fs" / "astro_0.jpg", masks=prev_polys)  # astro_0 comes before hopper_0 in the grid
    face = ws / "fs" / "hopper_0.jpg"
    page = studio_page
    with studio_server(ws) as url:
        open_editor(page, url, "fs/hopper_0.jpg")
        for x, y in [(20, 20), (60, 20), (60, 60)]:
            click_at(page, x, y)
        page.keyboard.press("Control+z")  # the last point goes
        click_at(page, 20, 60)
        page.keyboard.press("Enter")  # closes it
        assert polygons(page) == 1
        page.keyboard.press("Control+z")  # the close undone: the polygon is open again
        assert polygons(page) == 0
        page.keyboard.press("Control+Shift+z")  # redone
        assert polygons(page) == 1
        page.get_by_test_id("mask-save").click()
        assert wait_for(lambda: len(read_meta(face).masks) == 1)
        assert near(read_meta(face).masks[0]["points"], [[20, 20], [60, 20], [20, 60]], page)

        page.keyboard.press("c")  # copy the polygons of the previous face (replacing these)
        page.wait_for_function("() => document.getElementById('mask-app').dataset.polygons === '2'")
        page.keyboard.press("Control+z")  # a copy is undone like any edit
        assert polygons(page) == 1
        page.get_by_test_id("mask-copy-prev").click()
        page.wait_for_function("() => document.getElementById('mask-app').dataset.polygons === '2'")
        page.keyboard.press("d")  # next face: saves first (hopper_0 is the last, so it stays)
        assert wait_for(lambda: read_meta(face).masks == prev_polys)
        page.keyboard.press("a")  # previous face, in the grid's order
        page.wait_for_selector('#mask-app[data-ready="fs/astro_0.jpg"]')
        assert polygons(page) == 2
        assert page.url.endswith("/masks/fs/astro_0.jpg")


def test_the_face_panel_opens_the_editor(ws: Path, studio_page) -> None:
    page = studio_page
    with studio_server(ws) as url:
        page.goto(f"{url}/faceset/fs?sort=yaw")
        page.wait_for_function("() => document.querySelectorAll('[data-testid=face-tile] img').length === 2")
        page.keyboard.press("Enter")  # the panel of the face under the cursor
        link = page.get_by_test_id("mask-editor-link")
        link.wait_for()
        assert "sort=yaw" in link.get_attribute("href")  # previous/next in the grid's order
        link.click()
        page.wait_for_selector("#mask-app[data-ready]")
        assert page.get_by_test_id("mask-canvas").is_visible() and "sort=yaw" in page.url
