"""The studio's security rules, kept apart from the routes so each is small and tested on its own.

* Files are served only from inside the workspace: a request path is refused when it is absolute, climbs (``..``),
  names a hidden entry (the studio's own ``.facelab-studio``, ``.git``, ...) or resolves, through a symlink, to a
  place outside the workspace.
* A loopback host needs no token, but the Host header must then name a loopback host too (a DNS-rebinding page
  cannot read the studio). Any other host needs the access token printed at start.
* Every state-changing request carries the session's CSRF token (an HMAC of its session cookie).
* Nothing here or in the routes ever builds a shell string: the only processes are the jobs (``jobs.py``), each
  started with a checked argument list.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import ipaddress
import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from facelab.errors import FacelabError

SESSION_COOKIE = "facelab_studio_session"
TOKEN_COOKIE = "facelab_studio_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


class StudioError(FacelabError):
    """A refused or failed request: ``str(err)`` is the one line shown, ``status`` the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# --- the workspace and paths inside it ---------------------------------------------------------------------------


def open_workspace(path: str | os.PathLike[str]) -> Path:
    """The workspace folder, resolved (symlinks followed once, here); one-line FacelabError if it is not one."""
    p = Path(path).expanduser()
    if not p.exists():
        raise FacelabError(f"{p}: no such workspace folder")
    if not p.is_dir():
        raise FacelabError(f"{p}: is a file, not a workspace folder")
    return p.resolve()


def resolve_inside(root: Path, rel: str) -> Path:
    """``root / rel`` resolved, if it exists and stays inside ``root`` (``root`` itself resolved); StudioError
    otherwise. ``rel`` is a request path: '/'-separated, relative, without '..' or hidden components."""
    if "\x00" in rel or "\\" in rel or rel.startswith("/"):
        raise StudioError(f"{rel!r}: not a path inside the workspace", 403)
    parts = PurePosixPath(rel).parts
    if any(part == ".." for part in parts):
        raise StudioError(f"{rel}: path leaves the workspace: refused", 403)
    if any(part.startswith(".") for part in parts):
        raise StudioError(f"{rel}: hidden files are not served", 403)
    # resolve before asking whether it exists: a symlink out of the workspace is refused the same whether or not
    # its target exists, so the answer says nothing about files outside
    try:
        p = root.joinpath(*parts).resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop
        raise StudioError(f"{rel}: cannot resolve ({e})", 404) from e
    if not p.is_relative_to(root):
        raise StudioError(f"{rel}: leads outside the workspace (symlink): refused", 403)
    if not p.exists():
        raise StudioError(f"{rel}: no such file or folder in the workspace", 404)
    return p


def walk_inside(root: Path, depth: int) -> Iterator[tuple[Path, Path, list[os.DirEntry[str]], int]]:
    """(folder, its resolved path, its entries by name, level) for ``root`` and its visible subfolders down to
    ``depth``, parents first; symlink loops and links out of the workspace are not entered, nor are unreadable
    folders."""
    seen: set[Path] = set()

    def walk(folder: Path, level: int) -> Iterator[tuple[Path, Path, list[os.DirEntry[str]], int]]:
        real = folder.resolve()
        if real in seen or not real.is_relative_to(root):
            return
        seen.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        yield folder, real, entries, level
        if level < depth:
            for e in entries:
                try:
                    if not e.name.startswith(".") and e.is_dir():
                        yield from walk(Path(e.path), level + 1)
                except OSError:
                    continue

    yield from walk(root, 0)


def relative_name(root: Path, path: Path) -> str:
    """``path`` (resolved, inside ``root``) as the '/'-separated request path of it ('' for ``root``)."""
    rel = path.relative_to(root).as_posix()
    return "" if rel == "." else rel


def is_plain_name(name: str) -> bool:
    """A single visible file name: no separator, no NUL, not '.', '..' or hidden."""
    return bool(name) and "/" not in name and "\\" not in name and "\x00" not in name and not name.startswith(".")


# --- hosts and the access token ----------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1): the only hosts served without a token."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def host_name(host_header: str) -> str:
    """The host of a Host header, without its port: ``127.0.0.1:7860`` -> ``127.0.0.1``, ``[::1]:80`` -> ``::1``."""
    h = host_header.strip().lower()
    if h.startswith("["):
        return h[1 : h.find("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def same_token(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


# --- CSRF --------------------------------------------------------------------------------------------------------


class CsrfKeys:
    """Per-session CSRF tokens: HMAC(server secret, session id). A new secret each start, so a page left open
    across a restart must be reloaded (its requests are refused with a line saying so)."""

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)

    @staticmethod
    def new_session() -> str:
        return secrets.token_urlsafe(24)

    def token_for(self, session: str) -> str:
        return hmac.new(self._secret, session.encode(), hashlib.sha256).hexdigest()

    def valid(self, session: str | None, token: str | None) -> bool:
        return bool(session) and token is not None and hmac.compare_digest(self.token_for(session), token)


# --- listening ---------------------------------------------------------------------------------------------------


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (bound here, before the server starts, so a port in use is one line)."""
    if not 0 < port < 65536:
        raise FacelabError(f"--port {port}: not a TCP port (1-65535)")
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[
            0
        ]
    except socket.gaierror as e:
        raise FacelabError(f"--host {host}: cannot listen there ({e.strerror or e})") from e
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart right after a stop binds again
        sock.bind(addr)
        sock.listen(128)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise FacelabError(f"port {port} on {host} is already in use (another studio? choose --port N)") from e
        raise FacelabError(f"cannot listen on {host}:{port} ({e.strerror or e})") from e
    sock.set_inheritable(True)
    return sock
