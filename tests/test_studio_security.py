"""facelab studio's security rules: files only from inside the workspace (traversal and symlinks out refused), a CSRF
token on every state-changing request, the access token for hosts other than loopback, the Host header check,
and the bad starts (no workspace, port in use) as one line with nothing changed."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from studio_browser import copy_faces

from conftest import snapshot
from facelab.studio import app as studio_app
from facelab.studio.app import create_app, serve
from facelab.studio.security import StudioError, is_loopback, resolve_inside

STUDIO_SRC = Path(__file__).resolve().parents[1] / "facelab" / "studio"


@pytest.fixture
def ws(tmp_path: Path, studio_faces: Path) -> Path:
    """A workspace with faceset ``fs`` and, outside it, a face and a faceset the studio must never serve."""
    w = tmp_path / "ws"
    copy_faces(studio_faces, w / "fs")
    copy_faces(studio_faces, tmp_path / "outside")
    return w


def client(workspace: Path, token: str | None = None) -> TestClient:
    return TestClient(create_app(workspace, token), base_url="http://127.0.0.1")


def csrf_of(c: TestClient) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', c.get("/").text).group(1)


def one_line_error(r, status: int) -> str:
    assert r.status_code == status, r.text
    msg = r.json()["error"]
    assert msg and "\n" not in msg
    return msg


# --- paths -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rel",
    ["..", "../outside/hopper_0.jpg", "fs/../../outside", "/etc/passwd", "fs/\x00x", "fs\\..\\..", ".facelab-studio"],
)
def test_resolve_inside_refuses_paths_out(ws: Path, rel: str) -> None:
    with pytest.raises(StudioError) as e:
        resolve_inside(ws.resolve(), rel)
    assert e.value.status == 403


@pytest.mark.parametrize(
    "url",
    [
        "/file/..%2Foutside%2Fhopper_0.jpg",
        "/file/fs/%2E%2E/%2E%2E/outside/hopper_0.jpg",
        "/thumb/..%2F..%2Fetc%2Fpasswd",
        "/xseg/%2E%2E/outside/hopper_0.jpg",
        "/faceset/..%2Foutside",
        "/api/faces?faceset=..%2Foutside",
        "/api/face?faceset=fs&name=..%2F..%2Foutside%2Fhopper_0.jpg",
        "/trash-thumb/..%2F..%2Ffs%2Fhopper_0.jpg",
        "/file/.facelab-studio/faces.sqlite",
    ],
)
def test_requests_for_files_outside_are_refused(ws: Path, url: str) -> None:
    c = client(ws)
    c.get("/api/faces?faceset=fs")  # the studio's own files exist now
    msg = one_line_error(c.get(url), 403)
    assert "refused" in msg or "not served" in msg


def test_symlinks_out_of_the_workspace_are_refused(ws: Path, tmp_path: Path) -> None:
    (ws / "fs" / "leak.jpg").symlink_to(tmp_path / "outside" / "hopper_0.jpg")
    (ws / "out").symlink_to(tmp_path / "outside", target_is_directory=True)
    (ws / "fs" / "alias.jpg").symlink_to(ws / "fs" / "astro_0.jpg")  # a link that stays inside is fine
    before = snapshot(tmp_path / "outside")
    c = client(ws)
    for url in ("/file/fs/leak.jpg", "/thumb/fs/leak.jpg", "/file/out/hopper_0.jpg", "/faceset/out"):
        assert "outside the workspace" in one_line_error(c.get(url), 403), url
    assert c.get("/file/fs/alias.jpg").status_code == 200
    assert 'href="/faceset/out"' not in c.get("/").text  # nor listed
    # a symlinked face cannot be trashed out from under the outside folder either
    r = c.post("/api/trash", json={"faceset": "out", "names": ["hopper_0.jpg"]}, headers={"X-CSRF-Token": csrf_of(c)})
    one_line_error(r, 403)
    assert snapshot(tmp_path / "outside") == before


def test_a_file_outside_gives_the_same_answer_whether_or_not_it_exists(ws: Path, tmp_path: Path) -> None:
    (ws / "fs" / "a.jpg").symlink_to(tmp_path / "outside" / "hopper_0.jpg")
    (ws / "fs" / "b.jpg").symlink_to(tmp_path / "outside" / "missing.jpg")
    c = client(ws)
    assert c.get("/file/fs/a.jpg").status_code == c.get("/file/fs/b.jpg").status_code == 403


# --- CSRF --------------------------------------------------------------------------------------------------------


def test_state_changes_need_the_sessions_csrf_token(ws: Path) -> None:
    c = client(ws)
    token = csrf_of(c)
    body = {"faceset": "fs", "names": ["hopper_0.jpg"]}
    before = snapshot(ws / "fs")
    assert "CSRF" in one_line_error(c.post("/api/trash", json=body), 403)
    assert "CSRF" in one_line_error(c.post("/api/trash", json=body, headers={"X-CSRF-Token": "0" * 64}), 403)
    other = client(ws)  # another session's token is not this session's
    assert "CSRF" in one_line_error(other.post("/api/trash", json=body, headers={"X-CSRF-Token": token}), 403)
    cross = c.post("/api/trash", json=body, headers={"X-CSRF-Token": token, "Origin": "http://evil.example"})
    assert "another site" in one_line_error(cross, 403)
    assert snapshot(ws / "fs") == before
    r = c.post("/api/trash", json=body, headers={"X-CSRF-Token": token, "Origin": "http://127.0.0.1"})
    assert r.status_code == 200, r.text
    assert not (ws / "fs" / "hopper_0.jpg").exists()
    restore = {"faceset": "fs", "batch": r.json()["batch"]}
    one_line_error(c.post("/api/restore", json=restore), 403)
    assert c.post("/api/restore", json=restore, headers={"X-CSRF-Token": token}).status_code == 200


def test_session_cookie_is_http_only_and_strict(ws: Path) -> None:
    cookie = client(ws).get("/").headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


# --- hosts and the access token ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
        ("::", False),
        ("studio.example", False),
        ("localhost.example", False),
    ],
)
def test_only_loopback_hosts_go_without_a_token(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_foreign_host_header_is_refused_on_loopback(ws: Path) -> None:
    c = client(ws)
    r = c.get("/", headers={"Host": "evil.example:7860"})  # a DNS-rebinding page reaching our port
    assert r.status_code == 400 and "Host header" in r.text
    assert c.get("/", headers={"Host": "localhost:7860"}).status_code == 200


def test_a_token_is_required_when_one_is_set(ws: Path) -> None:
    c = TestClient(create_app(ws, token="s3cret-token"), base_url="http://studio.example")
    for r in (c.get("/"), c.get("/file/fs/hopper_0.jpg"), c.get("/?token=wrong"), c.get("/static/studio.css")):
        assert r.status_code == 401 and "token" in r.text and "\n" not in r.text.strip()
    r = c.get("/faceset/fs?token=s3cret-token&sort=blur", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/faceset/fs?sort=blur"  # the token leaves the URL
    assert c.get("/").status_code == 200  # ... for a cookie
    bare = TestClient(create_app(ws, token="s3cret-token"), base_url="http://studio.example")
    assert bare.get("/file/fs/hopper_0.jpg", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200


def test_serve_prints_a_token_for_hosts_other_than_loopback(ws: Path, monkeypatch, capsys) -> None:
    import uvicorn

    seen = {}

    def fake_bind(host: str, port: int) -> socket.socket:  # listen on loopback whatever the host asked for
        seen["host"] = host
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        return s

    def fake_run(self, sockets=None) -> None:
        seen["token"] = self.config.app.state.studio.token

    monkeypatch.setattr(studio_app, "bind_socket", fake_bind)
    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    assert serve(ws, "0.0.0.0", 7860) == 0
    out = capsys.readouterr().out
    assert seen["host"] == "0.0.0.0" and seen["token"] and f"?token={seen['token']}" in out
    assert serve(ws, "127.0.0.1", 7860) == 0
    assert seen["token"] is None and "?token=" not in capsys.readouterr().out


# --- bad starts --------------------------------------------------------------------------------------------------


def test_a_missing_workspace_is_one_line(tmp_path: Path, run_cli) -> None:
    rc, out, err = run_cli(["studio", tmp_path / "nope"])
    assert rc == 2 and err.strip() == f"facelab: error: {tmp_path / 'nope'}: no such workspace folder"
    assert not (tmp_path / "nope").exists()
    (tmp_path / "file").write_text("x")
    rc, out, err = run_cli(["studio", tmp_path / "file"])
    assert rc == 2 and "is a file, not a workspace folder" in err and len(err.strip().splitlines()) == 1


def test_a_port_in_use_is_one_line_and_changes_nothing(ws: Path, run_cli) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    before = snapshot(ws)
    try:
        rc, out, err = run_cli(["studio", ws, "--port", port])
    finally:
        busy.close()
    assert rc == 2
    assert (
        err.strip() == f"facelab: error: port {port} on 127.0.0.1 is already in use (another studio? choose --port N)"
    )
    assert snapshot(ws) == before and not (ws / ".facelab-studio").exists()


# --- the rest ----------------------------------------------------------------------------------------------------


def test_the_studio_never_builds_a_shell_command() -> None:
    code = "\n".join(p.read_text() for p in STUDIO_SRC.rglob("*.py"))
    for needle in ("os.system", "os.popen", "shell=", "os.exec", "os.spawn", "eval(", "exec(", "shlex"):
        assert needle not in code, needle
    # only the jobs start processes, once, with the checked argument list of ``command_line``
    for p in STUDIO_SRC.rglob("*.py"):
        if p.name != "jobs.py":
            assert "subprocess" not in p.read_text(), p.name
    jobs_code = (STUDIO_SRC / "jobs.py").read_text()
    assert jobs_code.count("subprocess.Popen(") == 1 and "subprocess.Popen(\n                argv," in jobs_code
    assert "argv = command_line(" in jobs_code


def test_pages_carry_the_security_headers(ws: Path) -> None:
    h = client(ws).get("/").headers
    assert (
        "frame-ancestors 'none'" in h["content-security-policy"] and "script-src 'self'" in h["content-security-policy"]
    )
    assert h["x-frame-options"] == "DENY" and h["referrer-policy"] == "no-referrer"
