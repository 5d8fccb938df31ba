"""Studio grid speed: how long the page of a faceset with 10 000 faces takes to show its first screen (at least 20
tiles with their thumbnails loaded in a 1400x900 headless Chromium window) once the thumbnails are cached on
disk. Goal: under 1 s.

The faceset is one small real face (Grace Hopper, the photo that ships in matplotlib, extracted at 128 px) copied
under 10 000 names into a temporary workspace, deleted at the end. The studio's face index and every thumbnail are
made first (timed too); then ``facelab studio`` starts as its own process and the page is opened in a fresh
browser context each run (no browser cache): run 1 on the just-started server, the others on the warm one.
Times are the page's own clock (navigation start to the 20th thumbnail loaded) and the wall clock around it.

Usage: .venv/bin/python benchmarks/studio_grid.py [--faces 10000] [--runs 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the browser tests' Chromium path and launch arguments
from studio_browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

FIRST_SCREEN = 20  # tiles
# where the first screen's time goes, by the page's clock (seconds from navigation start)
STEPS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const res = performance.getEntriesByType("resource");
  const api = res.find(r => r.name.includes("/api/faces"));
  const thumbs = res.filter(r => r.name.includes("/thumb/")).map(r => r.responseEnd).sort((a, b) => a - b);
  return {html_s: nav.responseEnd / 1000, dom_ready_s: nav.domContentLoadedEventEnd / 1000,
          listing_s: api ? api.responseEnd / 1000 : null, listing_kb: api ? api.encodedBodySize / 1024 : null,
          thumb20_s: thumbs.length >= 20 ? thumbs[19] / 1000 : null};
}"""
LOADED = "[...document.querySelectorAll('[data-testid=face-tile] img')].filter(i => i.complete && i.naturalWidth)"


def make_faceset(root: Path, n: int) -> Path:
    """``root/faces`` holding one real face copied under ``n`` names."""
    import cv2

    from facelab.config import ExtractConfig
    from facelab.demo import hopper_image
    from facelab.extract.pipeline import extract

    images = root / "images"
    images.mkdir()
    cv2.imwrite(str(images / "hopper.png"), cv2.cvtColor(hopper_image(), cv2.COLOR_RGB2BGR))
    extract(images, root / "one", ExtractConfig(size=128))
    face = next((root / "one").glob("*.jpg"))
    ws = root / "ws"
    (ws / "faces").mkdir(parents=True)
    for i in range(n):
        shutil.copyfile(face, ws / "faces" / f"face_{i:05d}.jpg")
    return ws


def warm_caches(ws: Path) -> dict[str, float]:
    """Build the studio's face index and every thumbnail, as browsing the whole grid once would."""
    from facelab.faceset.sort import thread_map
    from facelab.studio.listing import DB_NAME, FaceIndex
    from facelab.studio.thumbs import thumbnail
    from facelab.studio.web import STUDIO_DIR

    data = ws / STUDIO_DIR
    data.mkdir(exist_ok=True)
    t = time.perf_counter()
    rows = FaceIndex(data / DB_NAME).rows(ws / "faces", "faces")
    index_s = time.perf_counter() - t
    t = time.perf_counter()
    thread_map(lambda r: thumbnail(data / "thumbs", ws / "faces" / r.name, f"faces/{r.name}"), rows)
    thumbs_s = time.perf_counter() - t
    return {"index_s": index_s, "thumbs_s": thumbs_s, "thumbs_per_s": len(rows) / thumbs_s}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_studio(ws: Path, port: int) -> subprocess.Popen[str]:
    """``facelab studio`` in its own process, returned once it answers HTTP (a static file: nothing warmed)."""
    cmd = [sys.executable, "-m", "facelab", "studio", str(ws), "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/studio.css", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"facelab studio did not start: {proc.stderr.read() if proc.stderr else ''}") from None
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("facelab studio did not start within 60 s")


def first_screen(browser: Any, url: str, n: int) -> dict[str, float]:
    """Open the grid in a fresh context; page-clock and wall-clock seconds until FIRST_SCREEN thumbnails loaded."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    try:
        t = time.perf_counter()
        page.goto(url, wait_until="commit")
        handle = page.wait_for_function(
            f"() => {LOADED}.length >= {FIRST_SCREEN} && performance.now()", polling="raf", timeout=60_000
        )
        wall = time.perf_counter() - t
        page_s = handle.json_value() / 1000
        tiles = page.eval_on_selector_all("[data-testid=face-tile]", "els => els.length")
        steps = page.evaluate(STEPS)
        count = page.get_by_test_id("face-count").text_content()
        # then the far end of the grid: End key, until the last row's thumbnails are loaded
        t = time.perf_counter()
        page.keyboard.press("End")
        page.wait_for_function(
            f"() => {LOADED}.some(i => i.closest('.tile').dataset.index === '{n - 1}')", polling="raf", timeout=60_000
        )
        end_s = time.perf_counter() - t
    finally:
        ctx.close()
    return {"page_s": page_s, "wall_s": wall, "tiles_in_dom": tiles, "count": count, "end_s": end_s, **steps}


def main() -> int:
    p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("--faces", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=5, help="page loads (the first on a just-started server)")
    p.add_argument("--json", type=Path, metavar="OUT", help="also write the figures to OUT")
    a = p.parse_args()
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} not installed (Debian package chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="studio_grid_") as tmp:
        t = time.perf_counter()
        ws = make_faceset(Path(tmp), a.faces)
        print(f"faceset: {a.faces} copies of one 128 px face ({time.perf_counter() - t:.1f} s to make)")
        warm = warm_caches(ws)
        print(
            f"caches: face index {warm['index_s']:.1f} s, thumbnails {warm['thumbs_s']:.1f} s "
            f"({warm['thumbs_per_s']:.0f}/s)"
        )
        print(f"load average before the page loads: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        port = free_port()
        server = start_studio(ws, port)
        runs = []
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
                for i in range(a.runs):
                    r = first_screen(browser, f"http://127.0.0.1:{port}/faceset/faces", a.faces)
                    runs.append(r)
                    which = "just-started server" if i == 0 else "warm server"
                    print(
                        f"run {i + 1} ({which}): first screen {r['page_s']:.3f} s (page clock), {r['wall_s']:.3f} s "
                        f"(wall); {r['tiles_in_dom']} tiles in the page for {r['count']}; End key to last row "
                        f"{r['end_s']:.3f} s"
                    )
                    print(
                        f"    html {r['html_s']:.3f} s, page ready {r['dom_ready_s']:.3f} s, listing "
                        f"{r['listing_s']:.3f} s ({r['listing_kb']:.0f} kB), 20th thumbnail {r['thumb20_s']:.3f} s"
                    )
                browser.close()
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
    warm_runs = [r["page_s"] for r in runs[1:]] or [runs[0]["page_s"]]
    summary = {
        "faces": a.faces,
        **warm,
        "first_screen_just_started_s": runs[0]["page_s"],
        "first_screen_warm_median_s": statistics.median(warm_runs),
        "first_screen_max_s": max(r["page_s"] for r in runs),
        "runs": runs,
    }
    worst = summary["first_screen_max_s"]
    print(
        f"first screen of {a.faces} faces: {summary['first_screen_just_started_s']:.3f} s on a just-started server, "
        f"median {summary['first_screen_warm_median_s']:.3f} s warm, worst {worst:.3f} s "
        f"({'meets' if worst < 1 else 'misses'} the < 1 s goal)"
    )
    if a.json:
        a.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
