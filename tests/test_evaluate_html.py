"""report.html as a person sees it (issue 5, acceptance 3): rendered by headless Chromium, the metric table and the
plots must be in the DOM and visible on the screenshot.

The report comes from the real ``evaluate`` on a short real clip (2 s of a shared person video as dst, a blurred and
tinted copy of it as the "swap", src faces from another person's clip), or, without ../shared/data, on clips made
from package photos. FID is left out: it is not part of the page layout and costs a minute on a slow CPU.
Chromium is Debian's ``chromium`` (``.ci/run`` installs it); without it the test skips.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pytest

from conftest import SHARED, write_h264
from facelab.io.media import iter_frames

if TYPE_CHECKING:
    from facelab.faces.finder import FaceFinder

WIDTH, HEIGHT = 1280, 3000  # tall enough that the table and every plot fit on one screenshot
PNG_PREFIX = "data:image/png;base64,"
CHROMIUM_TIMEOUT = 120  # s; a cold start on a loaded 2-core machine takes a few seconds

# Runs after load (when the data: images are decoded) and leaves the layout in an attribute for --dump-dom.
PROBE = """<script>
window.addEventListener("load", () => {
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; };
  const table = document.getElementById("metrics");
  const plots = [...document.querySelectorAll("#plots img")].map((im) => ({
    box: box(im), natural: [im.naturalWidth, im.naturalHeight], complete: im.complete }));
  document.body.setAttribute("data-probe", JSON.stringify({ table: box(table), plots: plots }));
});
</script>
"""


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def run_chromium(binary: str, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium run with a throwaway profile (no state shared with other runs or users)."""
    with tempfile.TemporaryDirectory(prefix="facelab-chromium-") as profile:
        cmd = [
            binary,
            "--headless",
            "--no-sandbox",  # root in CI containers: the sandbox refuses to start
            "--disable-gpu",
            "--disable-dev-shm-usage",  # small /dev/shm in containers crashes the renderer
            "--no-first-run",
            "--disable-extensions",
            "--mute-audio",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",  # CSS px == screenshot px, so DOM boxes index the screenshot
            f"--window-size={WIDTH},{HEIGHT}",
            f"--user-data-dir={profile}",
            *args,
            url,
        ]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"chromium did not finish within {CHROMIUM_TIMEOUT} s: {' '.join(cmd)}")


class ReportDom(HTMLParser):
    """Table rows of #metrics, <img> sources inside #plots and #worst, and the body's data-probe attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []  # ids of the open sections we care about
        self.rows: list[list[str]] = []
        self.images: dict[str, list[str]] = {"plots": [], "worst": []}
        self.probe: dict | None = None
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body" and a.get("data-probe"):
            self.probe = json.loads(a["data-probe"] or "{}")
        if a.get("id") in ("metrics", "plots", "worst"):
            self.stack.append(str(a["id"]))
        section = self.stack[-1] if self.stack else None
        if section == "metrics" and tag == "tr":
            self.rows.append([])
        if section == "metrics" and tag in ("td", "th"):
            self._in_cell = True
            self.rows[-1].append("")
        if section in self.images and tag == "img":
            self.images[section].append(a.get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._in_cell = False
        closes = {"metrics": "table", "plots": "div", "worst": "div"}  # no nested tables or divs inside them
        if self.stack and closes[self.stack[-1]] == tag:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self._in_cell and self.rows:
            self.rows[-1][-1] += data.strip()


def altered_copy(frames: list[np.ndarray]) -> list[np.ndarray]:
    """A cheap stand-in for a swap: blurred and tinted, so the metrics differ from zero but faces are found."""
    out = []
    for f in frames:
        g = cv2.GaussianBlur(f, (0, 0), 2.0).astype(np.int16)
        g[..., 0] += 18  # warmer, like an imperfect color transfer
        out.append(np.clip(g, 0, 255).astype(np.uint8))
    return out


@pytest.fixture(scope="module")
def report_dir(
    tmp_path_factory: pytest.TempPathFactory, finder: FaceFinder, hopper: np.ndarray, astronaut: np.ndarray
) -> Path:
    from facelab.config import ExtractConfig
    from facelab.demo import write_motion_clip
    from facelab.evaluate.report import evaluate
    from facelab.extract.pipeline import extract

    tmp = tmp_path_factory.mktemp("evaluate_html")
    dst_src = SHARED / "videos/person_p1_lp_d3.mp4"
    src_clip = SHARED / "videos/person_p2_lp_d6.mp4"
    if dst_src.exists() and src_clip.exists():
        frames = [f.image for _, f in zip(range(60), iter_frames(dst_src))]  # 2 s at 30 fps
        every = 50  # ~20 src faces out of 1008 frames
    else:  # no real-media set: package photos under a synthetic camera move
        src_clip = write_motion_clip(astronaut, tmp / "src.mp4", frames=8, size=256, audio=False)
        frames = [
            f.image for f in iter_frames(write_motion_clip(hopper, tmp / "motion.mp4", 16, size=256, audio=False))
        ]
        every = 2
    dst = write_h264(tmp / "dst.mp4", frames)
    swapped = write_h264(tmp / "swapped.mp4", altered_copy(frames))
    extract(src_clip, tmp / "src_fs", ExtractConfig(size=256, every=every))
    evaluate(tmp / "src_fs", dst, swapped, tmp / "report", with_fid=False, finder=finder)
    return tmp / "report"


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium; .ci/run installs it)")
    return binary


# ``chromium`` comes first so that a missing browser skips before the report is built.
def test_report_html_table_and_plots_visible_in_chromium(chromium: str, report_dir: Path) -> None:
    from facelab.evaluate.report import format_summary

    report = json.loads((report_dir / "report.json").read_text())
    page = report_dir / "report.html"
    probe = report_dir / "probe.html"  # the same page plus the layout probe; the screenshot is of the real page
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))

    dumped = run_chromium(chromium, probe.as_uri(), "--dump-dom")
    assert dumped.returncode == 0 and "</html>" in dumped.stdout, dumped.stderr[-2000:]
    dom = ReportDom()
    dom.feed(dumped.stdout)

    # DOM: the header row plus one row per metric of the console summary, each with a label, a value and N.
    summary_rows = [ln for ln in format_summary(report).splitlines() if " N=" in ln]
    assert len(dom.rows) == 1 + len(summary_rows) >= 10, dom.rows
    assert dom.rows[0] == ["metric", "value", "N"]
    assert all(len(r) == 3 and r[0] and r[1] and r[2].isdigit() for r in dom.rows[1:]), dom.rows
    assert any(r[0] == "ID retrieval top-1" for r in dom.rows)
    # DOM: >= 5 plots (3 per-frame curves + 2 histograms without FaceMesh) and the worst frames, all as PNG data.
    assert len(dom.images["plots"]) >= 5 and len(dom.images["worst"]) >= 1, dom.images.keys()
    for i, src in enumerate(dom.images["plots"] + dom.images["worst"]):
        ok = src.startswith(PNG_PREFIX) and base64.b64decode(src[len(PNG_PREFIX) :])[:8] == b"\x89PNG\r\n\x1a\n"
        assert ok, f"image {i} is not an embedded PNG: {src[:60]}"
    assert dom.probe is not None, "layout probe did not run (JavaScript or the load event missing)"
    assert len(dom.probe["plots"]) == len(dom.images["plots"])

    shot_path = report_dir / "screenshot.png"
    shot = run_chromium(chromium, page.as_uri(), f"--screenshot={shot_path}")
    assert shot.returncode == 0 and shot_path.is_file(), shot.stderr[-2000:]
    shot_img = cv2.imread(str(shot_path))
    assert shot_img is not None and shot_img.shape[:2] == (HEIGHT, WIDTH), getattr(shot_img, "shape", None)

    # Screenshot, table: inside the window, with text and borders drawn (dark pixels), not an empty box.
    x, y, w, h = (int(round(v)) for v in dom.probe["table"])
    assert w > 200 and h > 20 * len(dom.rows) and y + h <= HEIGHT, dom.probe["table"]
    table = shot_img[y : y + h, x : x + w]
    dark = (table.max(axis=2) < 128).mean()
    assert 0.02 < dark < 0.6, f"table region {dom.probe['table']}: {dark:.3f} dark pixels"

    # Screenshot, plots: each decoded, inside the window, colourful, and showing its own PNG pixel for pixel.
    for i, (plot, src) in enumerate(zip(dom.probe["plots"], dom.images["plots"])):
        x, y, w, h = (int(round(v)) for v in plot["box"])
        assert plot["complete"] and plot["natural"][0] > 0, f"plot {i} not decoded: {plot}"
        assert w > 100 and h > 100 and x + w <= WIDTH and y + h <= HEIGHT, f"plot {i} box {plot['box']}"
        region = shot_img[y : y + h, x : x + w]
        non_white = (region.min(axis=2) < 230).mean()
        colours = len(np.unique(region.reshape(-1, 3), axis=0))
        assert non_white > 0.03 and colours > 30, f"plot {i} looks blank: {non_white:.3f} ink, {colours} colours"
        png = cv2.imdecode(np.frombuffer(base64.b64decode(src[len(PNG_PREFIX) :]), np.uint8), cv2.IMREAD_COLOR)
        png = cv2.resize(png, (w, h), interpolation=cv2.INTER_AREA)
        diff = np.abs(region.astype(np.float32) - png.astype(np.float32)).mean()
        assert diff < 12, f"plot {i}: screenshot differs from its PNG by {diff:.1f} grey levels"
