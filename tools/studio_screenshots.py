"""The studio screenshots of README's Studio section (docs/studio/*.png): builds a small demo workspace in a temp
folder from the two public-domain faces that ship with matplotlib (Grace Hopper) and scikit-image (Eileen Collins),
starts the studio on a loopback port and saves one 1280x800 PNG per page with Playwright and Debian's Chromium.

    .venv/bin/python tools/studio_screenshots.py [--out docs/studio] [--keep]

The workspace: ``clips/`` (two moving clips, 256 px), ``faces/src`` and ``faces/dst`` (extracted from them), a tiny
``df-ud`` model trained for a few iterations (so the merge tuner has something to run: its face is a blur), the
swapped clip merged with it, a ``facelab evaluate`` report of that swap (no FID) and the ``faceset coverage`` plot
of src against dst. Everything is made with facelab's own commands. Each PNG is quantised to a palette (and
shrunk if still over ``MAX_BYTES``) to stay small in the repository.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # studio_browser: the studio server and Chromium launch of the tests

VIEWPORT = {"width": 1280, "height": 800}
MAX_BYTES = 300_000
COLORS = 128  # palette size of the saved PNGs


def build_workspace(ws: Path) -> None:
    from facelab.cli import main as cli
    from facelab.config import ModelConfig, TrainConfig
    from facelab.demo import astronaut_image, hopper_image, write_motion_clip
    from facelab.train.loop import Trainer

    clips = ws / "clips"
    clips.mkdir(parents=True)
    write_motion_clip(hopper_image(), clips / "src.mp4", frames=24, size=256, audio=False)
    write_motion_clip(astronaut_image(), clips / "dst.mp4", frames=16, size=256)
    for name in ("src", "dst"):
        assert cli(["extract", str(clips / f"{name}.mp4"), "-o", str(ws / "faces" / name), "--size", "128"]) == 0
    tiny = ModelConfig(archi="df-ud", resolution=64, face_type="full", ae_dims=32, e_dims=16, d_dims=16, d_mask_dims=8)
    fast = TrainConfig(batch=4, workers=0, precision="fp32", preview_every=0, autosave_minutes=1e9)
    Trainer(ws / "faces" / "src", ws / "faces" / "dst", ws / "models" / "tiny", tiny, fast).run(iterations=3)
    swapped = clips / "swapped.mp4"
    args = ["merge", str(clips / "dst.mp4"), "--model", str(ws / "models" / "tiny")]
    assert cli([*args, "--faceset", str(ws / "faces" / "dst"), "-o", str(swapped)]) == 0
    out = ws / "reports" / "tiny-swap"
    args = ["evaluate", "--src", str(ws / "faces" / "src"), "--dst", str(clips / "dst.mp4")]
    assert cli([*args, "--swapped", str(swapped), "-o", str(out), "--no-fid"]) == 0
    assert cli(["faceset", "coverage", str(ws / "faces" / "src"), str(ws / "faces" / "dst")]) == 0


def small_png(raw: bytes) -> bytes:
    """``raw`` (a PNG screenshot) quantised to a palette; shrunk to 1000 px wide if still over MAX_BYTES."""
    from PIL import Image

    im = Image.open(io.BytesIO(raw)).convert("RGB")
    for width in (im.width, 1000):
        shown = im if width == im.width else im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
        buf = io.BytesIO()
        shown.quantize(COLORS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            buf, "PNG", optimize=True
        )
        if buf.tell() <= MAX_BYTES:
            break
    return buf.getvalue()


def api(url: str, path: str, body: dict, csrf: str, cookie: str) -> dict:
    req = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "x-csrf-token": csrf, "Cookie": cookie},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def shoot(ws: Path, out: Path) -> list[Path]:
    from studio_browser import CHROMIUM, browser_missing, launch_chromium, studio_server

    why = browser_missing()
    if why:
        raise SystemExit(f"studio_screenshots: {why}")
    print(f"chromium: {CHROMIUM}")
    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    src = sorted(p.name for p in (ws / "faces" / "src").glob("*.jpg"))
    dst = sorted(p.name for p in (ws / "faces" / "dst").glob("*.jpg"))
    with studio_server(ws) as url, launch_chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(30_000)

        def save(name: str) -> None:
            page.wait_for_timeout(300)
            path = out / f"{name}.png"
            path.write_bytes(small_png(page.screenshot()))
            saved.append(path)
            print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {path.stat().st_size} bytes")

        page.goto(f"{url}/")
        csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
        cookie = "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())
        # two dst faces to the trash (what the trash page shows), a training-free job (extract) for the jobs page
        api(url, "/api/trash", {"faceset": "faces/dst", "names": dst[-2:]}, csrf, cookie)
        job = api(url, "/api/jobs", {"command": "extract", "args": {"input": "clips/src.mp4",
                                                                     "output": "faces/again", "size": 128}},
                  csrf, cookie)  # fmt: skip
        page.goto(f"{url}/")
        save("home")

        page.goto(f"{url}/faceset/faces/src")
        page.wait_for_function("() => document.querySelectorAll('[data-testid=face-tile] img').length >= 12")
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=face-tile] img')].every(i => i.complete)"
        )
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
        page.get_by_test_id("face-panel").wait_for(state="visible")
        page.wait_for_function("() => document.querySelectorAll('.panel .landmarks circle').length === 68")
        save("faceset_grid")

        page.goto(f"{url}/trash")
        page.get_by_test_id("trash-item").first.wait_for()
        save("trash")

        face = f"faces/src/{src[2]}"
        page.goto(f"{url}/masks/{face}")
        page.wait_for_selector(f'#mask-app[data-ready="{face}"]')
        box = page.get_by_test_id("mask-canvas").bounding_box()
        side = 128
        for x, y in [(30, 40), (98, 40), (104, 84), (64, 118), (24, 84)]:  # include: the face
            page.mouse.click(box["x"] + x / side * box["width"], box["y"] + y / side * box["height"])
        page.keyboard.press("Enter")
        page.keyboard.press("w")  # exclude: the mouth
        for x, y in [(50, 92), (78, 92), (64, 106)]:
            page.mouse.click(box["x"] + x / side * box["width"], box["y"] + y / side * box["height"])
        page.keyboard.press("Enter")
        save("mask_editor")

        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # the extract job ends in seconds to a minute on 2 busy cores
            with urllib.request.urlopen(
                urllib.request.Request(f"{url}/api/jobs/{job['id']}", headers={"Cookie": cookie}), timeout=30
            ) as r:
                if json.loads(r.read()).get("status") != "running":
                    break
            time.sleep(1)
        page.goto(f"{url}/jobs")
        page.get_by_test_id("job-item").first.wait_for()
        page.get_by_test_id("job-item").first.click()
        page.wait_for_timeout(1500)
        save("jobs")

        page.goto(f"{url}/merge?dst=clips/dst.mp4&faceset=faces/dst&model=models/tiny")
        page.wait_for_function(
            "() => document.querySelector('[data-testid=merge-frame]').dataset.frame === '0'", timeout=120_000
        )
        save("merge_tuner")

        page.goto(f"{url}/reports")
        save("reports")
        page.goto(f"{url}/reports/view/reports/tiny-swap")
        save("report")
        page.goto(f"{url}/reports/view/faces/src.coverage.png")
        page.wait_for_function("() => document.querySelector('[data-testid=coverage-image]').naturalWidth > 0")
        save("coverage")
        # the full report.html, under its sandboxing policy: its data: plots must still show (checked, not saved)
        page.goto(f"{url}/reports/html/reports/tiny-swap")
        shown = page.evaluate("() => [...document.images].filter(i => i.naturalWidth > 0).length")
        print(f"report.html: {shown} of {page.evaluate('() => document.images.length')} images shown")
        context.close()
    return saved


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "studio"), help="folder for the PNGs")
    p.add_argument("--keep", action="store_true", help="keep the demo workspace (its path is printed)")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="facelab-studio-shots-"))
    try:
        ws = tmp / "demo"
        t0 = time.monotonic()
        build_workspace(ws)
        print(f"workspace built in {time.monotonic() - t0:.0f} s: {ws}")
        shoot(ws, Path(a.out))
    finally:
        if a.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
