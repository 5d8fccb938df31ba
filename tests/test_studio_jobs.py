"""facelab studio's jobs: a real tiny training job started from the API runs the CLI's code in the background, its
progress, preview and loss curve are served, it survives a studio restart; paths out of the workspace and requests
without the CSRF token are refused; stop (Ctrl+C) saves the model and resume goes on from it."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from facelab.studio.app import create_app
from facelab.studio.jobs import JOB_ENV, _alive, command_line
from facelab.studio.security import StudioError

TINY = {
    "archi": "df-ud",
    "resolution": 64,
    "ae_dims": 32,
    "e_dims": 16,
    "d_dims": 16,
    "d_mask_dims": 8,
    "batch": 4,
    "workers": 0,
    "precision": "fp32",
}


@pytest.fixture
def ws(tmp_path: Path, studio_faces: Path) -> Path:
    """A workspace with faceset ``src`` (Grace Hopper) and ``dst`` (Eileen Collins), four copies of each face."""
    w = tmp_path / "ws"
    for name, face in (("src", "hopper_0.jpg"), ("dst", "astro_0.jpg")):
        (w / name).mkdir(parents=True)
        for i in range(4):
            shutil.copyfile(studio_faces / face, w / name / f"{name}{i}.jpg")
    (w / "models").mkdir()
    return w


def client(workspace: Path) -> tuple[TestClient, dict[str, str]]:
    c = TestClient(create_app(workspace), base_url="http://127.0.0.1")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', c.get("/jobs").text).group(1)
    return c, {"X-CSRF-Token": csrf}


def train_args(iters: int, **more: Any) -> dict[str, Any]:
    return {"src": ["src"], "dst": "dst", "model": "models/m", "iters": iters, "preview_every": 2, **TINY, **more}


def wait_job(c: TestClient, job_id: str, timeout: float = 60.0, until: Any = None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = c.get(f"/api/jobs/{job_id}").json()
        if (until(job) if until else job["status"] != "running") or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def test_a_training_job_runs_reports_and_survives_a_restart(ws: Path) -> None:
    c, h = client(ws)
    r = c.post("/api/jobs", json={"command": "train", "args": train_args(4)}, headers=h)
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["status"] == "running" and job["argv"][:3] == ["-m", "facelab", "train"]
    assert "--model=models/m" in job["argv"] and "--iters=4" in job["argv"]
    job = wait_job(c, job["id"])
    assert job["status"] == "finished" and job["returncode"] == 0, job["log"]
    assert job["progress"]["done"] == job["progress"]["total"] == 4
    assert job["progress"]["iteration"] == 4
    assert set(job["images"]) == {"preview.png", "losses.png"}
    png = c.get(f"/api/jobs/{job['id']}/image/preview.png")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    assert png.headers["cache-control"] == "no-store"
    assert c.get(f"/api/jobs/{job['id']}/image/state.json").status_code == 404
    folder = ws / ".facelab-studio" / "jobs" / job["id"]
    saved = json.loads((folder / "job.json").read_text())
    assert saved["status"] == "finished" and saved["pid"] == job["pid"]
    assert "--- finished (return code 0)" in (folder / "log.txt").read_text()

    again, _ = client(ws)  # a studio started again finds the job, its state and its log
    listed = again.get("/api/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]] and listed[0]["status"] == "finished"
    assert again.get(f"/api/jobs/{job['id']}").json()["log"] == job["log"]
    assert 'data-testid="job-start"' in again.get("/jobs").text


def test_a_running_job_whose_process_is_gone_is_marked_ended(ws: Path) -> None:
    folder = ws / ".facelab-studio" / "jobs" / "20260101-000000-abcdef"
    folder.mkdir(parents=True)
    job = {
        "id": folder.name,
        "command": "train",
        "args": train_args(6),
        "argv": [],
        "status": "running",
        "pid": 999999999,
    }
    (folder / "job.json").write_text(json.dumps(job))
    c, _ = client(ws)
    assert c.get(f"/api/jobs/{folder.name}").json()["status"] == "ended"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"src": ["../outside"], "dst": "dst", "model": "models/m"}, "leaves the workspace"),
        ({"src": ["src"], "dst": "/etc", "model": "models/m"}, "not a path inside"),
        ({"src": ["src"], "dst": "dst", "model": "../m"}, "leaves the workspace"),
        ({"src": ["src"], "dst": "dst", "model": "/tmp/m"}, "not a path inside"),
        ({"src": ["src"], "dst": "dst", "model": "nowhere/m"}, "no such file"),
        ({"src": ["src"], "dst": "dst", "model": ".facelab-studio/m"}, "hidden"),
        ({"src": ["src"], "dst": "dst", "model": "models/m", "iters": "6; rm -rf /"}, "not an integer"),
        ({"src": ["src"], "dst": "dst", "model": "models/m", "archi": "--help"}, "not a plain value"),
        ({"src": ["src"], "dst": "dst", "model": "models/m", "preset": "fast; ls"}, "not one of"),
        ({"src": ["src"], "dst": "dst", "model": "models/m", "shell": "x"}, "not an option"),
        ({"src": ["src"], "dst": "dst"}, "needs model"),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(ws: Path, tmp_path: Path, args: dict, fragment: str) -> None:
    (tmp_path / "outside").mkdir()
    c, h = client(ws)
    r = c.post("/api/jobs", json={"command": "train", "args": args}, headers=h)
    assert r.status_code in (403, 404, 422), r.text
    assert fragment in r.json()["error"] and "\n" not in r.json()["error"]
    assert c.get("/api/jobs").json()["jobs"] == []
    assert not (ws / "models" / "m").exists()


def test_unknown_commands_and_missing_csrf_are_refused(ws: Path) -> None:
    c, h = client(ws)
    r = c.post("/api/jobs", json={"command": "train", "args": train_args(6)})
    assert r.status_code == 403 and "CSRF" in r.json()["error"]
    r = c.post("/api/jobs", json={"command": "studio", "args": {}}, headers=h)
    assert r.status_code == 422 and "not a job command" in r.json()["error"]
    assert c.post("/api/jobs/20260101-000000-abcdef/stop").status_code == 403
    assert c.get("/api/jobs").json()["jobs"] == []


def test_command_lines_are_argument_lists(ws: Path) -> None:
    root = ws.resolve()
    argv = command_line(root, "merge", {"dst": "dst", "model": "models", "output": "out.mp4", "color": "rct"})
    assert argv[1:] == ["-m", "facelab", "merge", "dst", "--model=models", "--output=out.mp4", "--color=rct"]
    argv = command_line(
        root, "mask-train", {"faceset": ["src", "dst"], "out": "xseg", "iters": 3, "random_warp": False}
    )
    assert argv[3:] == [
        "mask",
        "train",
        "--faceset=src",
        "--faceset=dst",
        "--out=xseg",
        "--iters=3",
        "--no-random-warp",
    ]
    # a switch is given only when true; paths among merge's options are checked as paths
    assert command_line(root, "mask-train", {"faceset": ["src"], "out": "x", "generic": True})[-1] == "--generic"
    assert "--generic" not in command_line(root, "mask-train", {"faceset": ["src"], "out": "x", "generic": False})
    with pytest.raises(StudioError, match="outside|not a path"):
        command_line(root, "merge", {"dst": "dst", "model": "models", "output": "o.mp4", "mask_model": "/etc"})


def test_stop_saves_and_resume_goes_on(ws: Path) -> None:
    c, h = client(ws)
    job = c.post("/api/jobs", json={"command": "train", "args": train_args(100000)}, headers=h).json()
    # a fresh clone's first train start (no bytecode yet, torch imports) can take a while on 2 loaded cores
    running = wait_job(c, job["id"], timeout=240, until=lambda j: (j["progress"]["done"] or 0) >= 2)
    assert running["status"] == "running" and (running["progress"]["done"] or 0) >= 2, running["log"]
    r = c.post(f"/api/jobs/{job['id']}/stop", headers=h)
    assert r.status_code == 200, r.text
    stopped = wait_job(c, job["id"], timeout=30)
    assert stopped["status"] == "stopped", stopped["log"]
    saved = stopped["progress"].get("iteration")
    assert saved, stopped["log"]
    assert saved and saved >= 2  # Ctrl+C saved the model
    assert c.post(f"/api/jobs/{job['id']}/stop", headers=h).status_code == 409
    r = c.post(f"/api/jobs/{job['id']}/resume", headers=h)
    assert r.status_code == 200 and r.json()["runs"] == 2
    wait_job(c, job["id"], until=lambda j: (j["progress"]["done"] or 0) >= 1 and j["log"].count("$ facelab") == 2)
    c.post(f"/api/jobs/{job['id']}/stop", headers=h)
    final = wait_job(c, job["id"], timeout=30)
    assert final["status"] == "stopped" and final["progress"]["iteration"] > saved


def test_every_form_field_is_an_option_of_its_command() -> None:
    from facelab.studio.jobs import FORMS, SPECS

    kinds = {"list": ("in+",), "int": ("int",), "float": ("float",), "bool": ("flag", "switch")}
    for command, form in FORMS.items():
        spec = SPECS[command]
        for f in form.fields:
            assert f.name in spec.options, (command, f.name)
            kind = spec.options[f.name]
            if f.input == "select":
                assert isinstance(kind, tuple) or kind == "word", (command, f.name)
            elif f.input == "text":
                assert kind in ("in", "out", "word"), (command, f.name)
            else:
                assert kind in kinds[f.input], (command, f.name)
        assert set(spec.required) <= {f.name for f in form.fields if f.required}, command


def test_a_studio_started_again_follows_a_job_still_running_and_stops_it(ws: Path) -> None:
    """The studio that started a job has gone (restart); the job's process runs on. The new studio follows it
    (progress, then its end) and can stop it (Ctrl+C: the trainer saves)."""
    import subprocess

    job_id = "20260101-000000-fedcba"
    folder = ws / ".facelab-studio" / "jobs" / job_id
    folder.mkdir(parents=True)
    args = train_args(100000)
    argv = command_line(ws.resolve(), "train", args)
    with open(folder / "log.txt", "ab") as log:
        proc = subprocess.Popen(
            argv, cwd=ws, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **JOB_ENV},
        )  # fmt: skip
    try:
        # Popen can return while the kernel is still inside exec (/proc/PID/cmdline not yet the new one): a
        # restart comes later than that, so wait until the process reads as a facelab job
        deadline = time.monotonic() + 10
        while not _alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        job = {"id": job_id, "command": "train", "args": args, "argv": argv[1:], "status": "running",
               "pid": proc.pid, "runs": 1}  # fmt: skip
        (folder / "job.json").write_text(json.dumps(job))
        c, h = client(ws)
        running = wait_job(c, job_id, timeout=240, until=lambda j: (j["progress"]["done"] or 0) >= 2)
        assert running["status"] == "running" and (running["progress"]["done"] or 0) >= 2, running["log"]
        assert c.post(f"/api/jobs/{job_id}/stop", headers=h).status_code == 200
        stopped = wait_job(c, job_id, timeout=30)
        assert stopped["status"] == "stopped", stopped["log"]
        assert (stopped["progress"].get("iteration") or 0) >= 2, stopped["log"]  # saved on Ctrl+C
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
