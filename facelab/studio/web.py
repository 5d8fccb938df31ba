"""What every studio page module shares: the app's state, page rendering, JSON errors and server-sent events.

A page module (``facesets.py``, ``masks.py``, ``merge_tuner.py``, ``jobs.py``, ``reports.py``) holds an ``APIRouter`` named
``router`` and a ``NAV`` tuple of (label, path) for the header; ``app.py`` lists the modules.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from facelab.studio.security import CsrfKeys, StudioError

PACKAGE_DIR = Path(__file__).resolve().parent
STUDIO_DIR = ".facelab-studio"  # inside the workspace: thumbnails, the face index, the trash


@dataclass
class Studio:
    """The state of one running studio, on ``app.state.studio``."""

    root: Path  # the workspace, resolved
    templates: Jinja2Templates
    csrf: CsrfKeys = field(default_factory=CsrfKeys)
    token: str | None = None  # the access token, for hosts other than loopback
    nav: list[tuple[str, str]] = field(default_factory=list)  # (label, path) of the header's links
    services: dict[str, Any] = field(default_factory=dict)  # per page module: its caches (see facesets.py)
    stopping: threading.Event = field(default_factory=threading.Event)  # set when the server shuts down

    @property
    def data_dir(self) -> Path:
        return self.root / STUDIO_DIR


def studio(request: Request) -> Studio:
    return request.app.state.studio


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page from ``templates/``, with what ``base.html`` needs: the CSRF token of this session and the nav."""
    s = studio(request)
    session = request.state.session
    return s.templates.TemplateResponse(
        request,
        template,
        {"csrf": s.csrf.token_for(session), "nav": s.nav, "workspace": s.root.name, **context},
        status_code=status,
    )


def short_message(s: Studio, message: str) -> str:
    """A message without the workspace's absolute path (the page already says which workspace it is)."""
    return message.replace(str(s.root) + "/", "")


def error_response(request: Request, err: StudioError) -> Response:
    """A refused request: one line, as JSON for the API and scripts, as a small page for a browser's navigation."""
    if "text/html" in request.headers.get("accept", "") and request.method == "GET":
        return render(request, "error.html", status=err.status, message=str(err))
    return JSONResponse({"error": str(err)}, status_code=err.status)


async def event_stream(
    request: Request, poll: Callable[[], str], interval: float = 1.0, lifetime: float = 600.0
) -> StreamingResponse:
    """Server-sent events: ``changed`` (with ``poll()``'s new value) whenever ``poll()`` returns something new,
    checked every ``interval`` s. The stream ends after ``lifetime`` s (EventSource reconnects by itself) and as
    soon as the server stops, so a stopping server never waits on an open page."""
    stop = studio(request).stopping

    async def events() -> AsyncIterator[bytes]:
        last = await asyncio.to_thread(poll)
        yield b"retry: 2000\n\n"
        waited = 0.0
        while waited < lifetime and not stop.is_set() and not await request.is_disconnected():
            for _ in range(4):  # wake often enough to see the server stopping
                if not stop.is_set():
                    await asyncio.sleep(interval / 4)
            waited += interval
            now = await asyncio.to_thread(poll)
            if now != last:
                last = now
                yield f"event: changed\ndata: {json.dumps(now)}\n\n".encode()
            else:
                yield b": ping\n\n"  # a comment: lets the loop notice a closed connection

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
