"""What the studio's tests share (tests/conftest.py exposes the fixtures): a small faceset of real faces, workspaces
made from it, a studio running on a loopback port, and a headless Chromium page driven by Playwright.

The browser is Debian's ``/usr/bin/chromium`` (Playwright's own browser download cannot work here); without it or
without the ``playwright`` package the browser tests skip with the reason. ``.ci/run`` installs Chromium.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Playwright gives every launch a fresh profile in a temp folder of its own (it refuses --user-data-dir here)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 900}


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not installed (Debian package chromium; .ci/run installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements.txt)"
    return None


@contextlib.contextmanager
def launch_chromium() -> Iterator[Any]:
    """A headless Chromium (a ``playwright.sync_api.Browser``), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")  # per module: no Playwright event loop left over for the rest of the session
def chromium() -> Iterator[Any]:
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    with launch_chromium() as browser:
        yield browser


@pytest.fixture
def studio_page(chromium: Any) -> Iterator[Any]:
    """A new page, 1400x900, in its own browser context (own cookies, so its own studio session)."""
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        yield page
    finally:
        context.close()


@contextlib.contextmanager
def studio_server(workspace: Path, token: str | None = None) -> Iterator[str]:
    """``facelab studio`` on 127.0.0.1 and a free port, in a thread; yields its base URL (no trailing slash)."""
    from facelab.studio.app import create_app, make_server

    app = create_app(workspace, token)
    # a page closed mid-answer must not end the test run: the CLI's tests (run_cli) leave SIGPIPE at SIG_DFL
    old_sigpipe = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = make_server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        if not server.started:
            raise RuntimeError("the studio did not start")
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        signal.signal(signal.SIGPIPE, old_sigpipe)


def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``check`` until it is true or ``timeout`` s passed; its last answer."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return check()
        time.sleep(0.05)
    return True


# --- faces -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def studio_faces(tmp_path_factory: pytest.TempPathFactory, hopper: Any, astronaut: Any) -> Path:
    """Two real faces at 128 px (Grace Hopper, Eileen Collins; images that ship in matplotlib and scikit-image),
    extracted once per session: ``hopper_0.jpg``, ``astro_0.jpg``."""
    import cv2

    from facelab.config import ExtractConfig
    from facelab.extract.pipeline import extract

    images = tmp_path_factory.mktemp("studio_images")
    cv2.imwrite(str(images / "hopper.png"), cv2.cvtColor(hopper, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(images / "astro.png"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    out = tmp_path_factory.mktemp("studio_faces") / "faces"
    assert extract(images, out, ExtractConfig(size=128)).faces_written == 2
    return out


def write_variant(faces: Path, dst: Path, base: str = "hopper_0.jpg", **changes: Any) -> Path:
    """Copy face ``base`` of ``faces`` to ``dst`` with its metadata fields changed (yaw=..., synthetic=...)."""
    from facelab.faceset.meta import embed
    from facelab.faceset.store import read_meta

    src = faces / base
    meta = dataclasses.replace(read_meta(src), **changes)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(embed(src.read_bytes(), meta))
    return dst


def copy_faces(faces: Path, dst: Path) -> Path:
    """The session's two faces copied into a new faceset folder ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for p in faces.glob("*.jpg"):
        shutil.copyfile(p, dst / p.name)
    return dst
