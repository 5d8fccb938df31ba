"""The studio's FastAPI app (``create_app``) and its server (``serve``, what ``facelab studio`` runs).

Every request passes ``Guard`` first: the access token (hosts other than loopback), the Host header (loopback),
the session cookie and, for a state-changing request, its CSRF token and Origin. Page modules add routes; to add a
page, write a module like ``facesets.py`` (``router``, ``NAV``, ``setup``, ``warm``) and list it in ``PAGES``.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facelab.errors import FacelabError
from facelab.io.atomic import ensure_writable_dir
from facelab.studio import facesets, jobs, masks, merge_tuner, reports
from facelab.studio.security import (
    CSRF_HEADER,
    SESSION_COOKIE,
    TOKEN_COOKIE,
    UNSAFE_METHODS,
    StudioError,
    bind_socket,
    host_name,
    is_loopback,
    new_token,
    open_workspace,
    same_token,
)
from facelab.studio.web import PACKAGE_DIR, STUDIO_DIR, Studio, error_response, short_message

# each: router, NAV, setup(studio), warm(studio)
PAGES: tuple[ModuleType, ...] = (facesets, masks, merge_tuner, jobs, reports)
COOKIE_FLAGS = "HttpOnly; Path=/; SameSite=strict"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # no clickjacking of the trash button
    "Referrer-Policy": "no-referrer",  # the token never leaves in a Referer
}


def create_app(workspace: str | Path, token: str | None = None) -> FastAPI:
    """The studio for ``workspace``. ``token``: the access token every request must carry (required for any host
    other than loopback); None: loopback only, checked on each request's Host header."""
    root = open_workspace(workspace)
    ensure_writable_dir(root / STUDIO_DIR, f"workspace (the studio writes its {STUDIO_DIR} folder there)")
    app = FastAPI(title="facelab studio", docs_url=None, redoc_url=None, openapi_url=None)
    s = Studio(root=root, templates=Jinja2Templates(directory=PACKAGE_DIR / "templates"), token=token)
    app.state.studio = s
    for page in PAGES:
        page.setup(s)
        s.nav.extend(page.NAV)
        app.include_router(page.router)
    app.mount("/static", StaticFiles(directory=PACKAGE_DIR / "static"), name="static")
    _add_error_handlers(app)
    app.add_middleware(Guard, studio=s)
    return app


class Guard:
    """Every request passes here first (a plain ASGI middleware: no task group per request, streams untouched):
    the access token or the Host header, the session cookie and, for a state-changing request, its CSRF token and
    Origin; every answer gets the security headers."""

    def __init__(self, app: ASGIApp, studio: Studio) -> None:
        self.app = app
        self.studio = studio

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        session = request.cookies.get(SESSION_COOKIE)
        fresh = not session
        scope.setdefault("state", {})["session"] = self.studio.csrf.new_session() if fresh else session
        refusal = self._refusal(request, None if fresh else session)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                own = headers.getlist("content-security-policy")  # a route's stricter policy (reports.py)
                headers.update(SECURITY_HEADERS)
                for policy in own:  # kept as a second header: browsers enforce every policy, so it only narrows
                    headers.append("content-security-policy", policy)
                if fresh:
                    headers.append("set-cookie", f"{SESSION_COOKIE}={scope['state']['session']}; {COOKIE_FLAGS}")
            await send(message)

        await (refusal or self.app)(scope, receive, send_with_headers)

    def _refusal(self, request: Request, session: str | None) -> Response | None:
        s = self.studio
        if s.token is not None:
            given = request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE) or _bearer(request)
            if not same_token(given, s.token):
                return PlainTextResponse(
                    "facelab studio: access token missing or wrong: open the URL printed at start", 401
                )
            if "token" in request.query_params and request.method == "GET":  # into a cookie, out of the address bar
                rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
                r = RedirectResponse(request.url.path + (f"?{rest}" if rest else ""), 303)
                r.set_cookie(TOKEN_COOKIE, s.token, httponly=True, samesite="strict")
                return r
        elif not is_loopback(host_name(request.headers.get("host", ""))):  # DNS rebinding: a foreign page, our port
            return PlainTextResponse("facelab studio: refused: the Host header does not name this machine", 400)
        if request.method in UNSAFE_METHODS:
            refused = _csrf_refusal(request, s, session)
            if refused:
                return JSONResponse({"error": refused}, 403)
        return None


def _csrf_refusal(request: Request, s: Studio, session: str | None) -> str | None:
    """Why a state-changing request is refused, or None: it must come from a page of this studio (Origin, when
    the browser sends one) and carry this session's CSRF token."""
    origin = request.headers.get("origin")
    if origin and host_name(urlsplit(origin).netloc) != host_name(request.headers.get("host", "")):
        return "refused: the request comes from another site"
    if not s.csrf.valid(session, request.headers.get(CSRF_HEADER)):
        return "refused: missing or wrong CSRF token (reload the page)"
    return None


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:] if auth.lower().startswith("bearer ") else None


def _add_error_handlers(app: FastAPI) -> None:
    """Every refusal is one line: ``{"error": "..."}`` for the API, a small page for a browser."""

    @app.exception_handler(StudioError)
    async def studio_error(request: Request, e: StudioError) -> Response:
        return error_response(request, e)

    @app.exception_handler(FacelabError)
    async def facelab_error(request: Request, e: FacelabError) -> Response:  # from the faceset tools: bad input
        return error_response(request, StudioError(short_message(request.app.state.studio, str(e)), 400))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, e: RequestValidationError) -> Response:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return error_response(request, StudioError(f"{where}: {first.get('msg', 'invalid')}", 422))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> Response:
        what = "no such page" if e.status_code == 404 else str(e.detail)
        return error_response(request, StudioError(f"{request.url.path}: {what}", e.status_code))


def make_server(app: FastAPI) -> Any:
    """A uvicorn server for the studio ``app`` that ends its event streams first when it shuts down (else open
    pages would hold the shutdown until its timeout)."""
    import uvicorn

    class StudioServer(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            app.state.studio.stopping.set()
            await super().shutdown(sockets)

    return StudioServer(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=3))


def serve(workspace: str | Path, host: str, port: int) -> int:
    """Run the studio until Ctrl+C. The workspace is checked and the port bound before anything is written, so a
    missing workspace or a port in use is one line and leaves nothing behind."""
    if hasattr(signal, "SIGPIPE"):  # the CLI lets a closed pipe end it; a browser hanging up must not end a server
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    root = open_workspace(workspace)
    token = None if is_loopback(host) else new_token()
    sock = bind_socket(host, port)
    try:
        app = create_app(root, token)
    except FacelabError:
        sock.close()
        raise
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}/"
    for page in PAGES:
        threading.Thread(target=page.warm, args=(app.state.studio,), daemon=True, name=f"warm {page.__name__}").start()
    print(f"facelab studio: {root} at {url}  (Ctrl+C stops it)", flush=True)
    if token is not None:
        print(f"facelab studio: {host} is not loopback, so every request needs the access token: {token}", flush=True)
        print(f"facelab studio: open {url}?token={token}", flush=True)
    try:
        make_server(app).run(sockets=[sock])
    finally:
        sock.close()
    print("facelab studio: stopped", file=sys.stderr)
    return 0
