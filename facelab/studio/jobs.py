"""Jobs: run ``facelab extract``, ``train``, ``mask train``, ``merge`` and ``evaluate`` from the studio as
background processes (``sys.executable -m facelab ...``: the CLI's own code), follow their progress, loss curve and
preview, stop and resume them.

A job is one folder, ``.facelab-studio/jobs/<id>/``: ``job.json`` (command, arguments, argv, pid, status, return
code, times; written atomically) and ``log.txt`` (the process's stdout and stderr, appended to on each run). The
process gets an argument list, never a shell string; every argument is checked first: paths stay inside the
workspace (``security.py``'s rules), numbers are parsed, words are plain. A studio started again finds its jobs
there: one whose process is gone is marked ``ended``, one still running is followed again.

Stop is Ctrl+C (SIGINT to the job's process group: the trainers save their model), then SIGTERM after
``STOP_GRACE`` s; resume runs the same command again in the same job (the trainers resume from their folder).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import signal
import subprocess  # an argument list only (see ``Jobs.start``): never a shell
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel

from facelab.config import MaskConfig, MergeConfig, ModelConfig, TrainConfig
from facelab.io.atomic import write_atomic
from facelab.runs.progress import STUDIO_JOB_ENV
from facelab.studio.listing import find_facesets, find_models, find_videos
from facelab.studio.security import StudioError, is_plain_name, relative_name, resolve_inside
from facelab.studio.web import Studio, event_stream, render, studio
from facelab.train.presets import PRESETS

router = APIRouter()
NAV = (("Jobs", "/jobs"),)
JOB_ENV = {"FACELAB_PROGRESS": "1", "PYTHONUNBUFFERED": "1", STUDIO_JOB_ENV: "1"}  # bars in the log; Ctrl+C stops
STOP_GRACE = 10.0  # s between SIGINT (the trainers save) and SIGTERM
LOG_TAIL = 8192  # bytes of the log sent to the page
PROGRESS_SCAN = 65536  # bytes at the end of the log searched for the latest "done/total"
JOB_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")
WORD = re.compile(r"^[A-Za-z0-9_.+:,=-]{1,64}$")  # a plain option value (archi names, presets, detectors, ...)
PROGRESS = re.compile(rb"(\d+)/(\d+) \[")  # tqdm's "  3/6 [00:01<..."
IMAGES = ("preview.png", "losses.png")  # of a train job's model folder


# --- what each command accepts -----------------------------------------------------------------------------------
# kinds: "in" an existing path, "out" a path to write (its folder exists), "in+" a list of existing paths, "int",
# "float", "flag" (a bool option: --x / --no-x), "switch" (only --x, when true), "word" (a plain value), or a tuple
# of choices


@dataclass(frozen=True)
class Spec:
    argv: tuple[str, ...]  # after ``-m facelab``
    options: dict[str, Any]  # name (as the CLI's --name, with _) -> kind
    positional: tuple[str, ...] = ()  # option names given as positional arguments, in order
    required: tuple[str, ...] = ()
    model: str | None = None  # the option naming the folder whose preview.png / losses.png the page shows


def _config_options(*classes: type) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for cls in classes:
        for f in dataclasses.fields(cls):
            d = getattr(cls(), f.name)
            out[f.name] = (
                "flag"
                if isinstance(d, bool)
                else "int"
                if isinstance(d, int)
                else "float"
                if isinstance(d, float)
                else "word"
            )
    return out


SPECS: dict[str, Spec] = {
    "train": Spec(
        ("train",),
        {
            **_config_options(ModelConfig, TrainConfig),
            "src": "in+",
            "dst": "in",
            "model": "out",
            "iters": "int",
            "minutes": "float",
            "preset": tuple(PRESETS),
        },
        required=("src", "dst", "model"),
        model="model",
    ),
    "extract": Spec(
        ("extract",),
        {
            "input": "in",
            "output": "out",
            "face_type": "word",
            "size": "int",
            "detector": "word",
            "every": "int",
            "jobs": "int",
            "max_faces": "int",
            "no_refine": "switch",
            "no_smooth": "switch",
            "force": "switch",
        },
        positional=("input",),
        required=("input", "output"),
    ),
    "mask-train": Spec(
        ("mask", "train"),
        {
            **_config_options(MaskConfig),
            "faceset": "in+",
            "out": "out",
            "iters": "int",
            "minutes": "float",
            "init": "in",
            "generic": "switch",
        },
        required=("faceset", "out"),
        model="out",
    ),
    "merge": Spec(
        ("merge",),
        {
            **_config_options(MergeConfig),
            "dst": "in",
            "model": "in",
            "faceset": "in",
            "output": "out",
            "fps": "float",
            "settings": "in",
            "mask_model": "in",
            "only_like": "in",
        },
        positional=("dst",),
        required=("dst", "model", "output"),
    ),
    "evaluate": Spec(
        ("evaluate",),
        {"src": "in", "dst": "in", "swapped": "in", "output": "out", "no_fid": "switch"},
        required=("src", "dst", "swapped"),
    ),
}


# --- the page's forms: the fields each command's form shows (the rest go in its "more options" box) ---------------
# input: "text", "list" (comma-separated: an "in+" option), "int", "float", "bool" (a checkbox), "select" (choices);
# suggest: the datalist offered (facesets, models, videos); the JS builds the form from this (jobs.js)


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    input: str = "text"
    suggest: str | None = None
    required: bool = False
    value: Any = None
    placeholder: str = ""
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Form:
    title: str
    fields: tuple[Field, ...]
    example: str  # the "more options" box's placeholder


FORMS: dict[str, Form] = {
    "extract": Form(
        "Extract faces",
        (
            Field("input", "video or image folder", suggest="videos", required=True),
            Field("output", "faceset folder", suggest="facesets", required=True, placeholder="new faceset"),
            Field("detector", "detector", "select", choices=("", "mediapipe", "dlib-hog", "dlib-mmod")),
            Field("every", "one frame in", "int", value=1),
        ),
        "size=256 face_type=wf",
    ),
    "train": Form(
        "Train a swap model",
        (
            Field("src", "src faceset", "list", "facesets", required=True),
            Field("dst", "dst faceset", suggest="facesets", required=True),
            Field("model", "model folder", suggest="models", required=True, placeholder="new or existing"),
            Field("preset", "preset", "select", choices=("", *PRESETS)),
            Field("iters", "iterations", "int", value=1000),
        ),
        "resolution=64 batch=4",
    ),
    "mask-train": Form(
        "Train a mask model",
        (
            Field("faceset", "facesets", "list", "facesets", required=True, placeholder="a, b"),
            Field("out", "mask model folder", suggest="models", required=True, placeholder="new or existing"),
            Field("iters", "iterations", "int", value=1000),
            Field("generic", "generic (no labels needed)", "bool", value=False),
            Field("init", "fine-tune from", suggest="models", placeholder="a generic mask model"),
        ),
        "batch=4 occluder_prob=0.5",
    ),
    "merge": Form(
        "Merge a video",
        (
            Field("dst", "dst video", suggest="videos", required=True),
            Field("model", "model folder", suggest="models", required=True),
            Field("output", "output video", required=True, placeholder="merged.mp4"),
            Field("settings", "merge settings", placeholder="from the merge tuner (JSON)"),
        ),
        "mask_mode=xseg-dst mask_model=masks/m",
    ),
    "evaluate": Form(
        "Evaluate a swap",
        (
            Field("src", "src faceset", suggest="facesets", required=True),
            Field("dst", "dst video", suggest="videos", required=True),
            Field("swapped", "merged video", suggest="videos", required=True),
            Field("output", "report folder", required=True, placeholder="reports/new"),
            Field("no_fid", "skip FID (slow on a CPU)", "bool", value=True),
        ),
        "",
    ),
}


def forms_json() -> dict[str, Any]:
    """FORMS as the page's script reads them."""
    return {c: dataclasses.asdict(f) for c, f in FORMS.items()}


def command_line(root: Path, command: str, args: dict[str, Any]) -> list[str]:
    """The checked argument list of ``facelab <command>`` with ``args``; StudioError (one line) for anything off.
    Paths are passed as given (relative: the process runs in the workspace) once they are known to stay inside."""
    spec = SPECS.get(command)
    if spec is None:
        raise StudioError(f"{command}: not a job command ({', '.join(SPECS)})", 422)
    missing = [n for n in spec.required if args.get(n) in (None, "", [])]
    if missing:
        raise StudioError(f"{command} needs {', '.join(missing)}", 422)
    positional: list[str] = []
    options: list[str] = []
    for name, value in args.items():
        kind = spec.options.get(name)
        if kind is None:
            raise StudioError(f"{name}: not an option of {command}", 422)
        if value is None or value == "":
            continue
        flag = "--" + name.replace("_", "-")
        if kind in ("flag", "switch"):
            if not isinstance(value, bool):
                raise StudioError(f"{name}: give true or false", 422)
            if value or kind == "flag":
                options.append(flag if value else "--no-" + flag[2:])
            continue
        for v in value if kind == "in+" and isinstance(value, list) else [value]:
            text = _checked(root, name, kind, v)
            if name in spec.positional:
                positional.append(text)
            else:
                options.append(f"{flag}={text}")
    return [sys.executable, "-m", "facelab", *spec.argv, *positional, *options]


def _checked(root: Path, name: str, kind: Any, value: Any) -> str:
    if kind in ("int", "float"):
        if isinstance(value, bool):
            raise StudioError(f"{name}: not a number", 422)
        try:
            number = int(value) if kind == "int" else float(value)
        except (TypeError, ValueError) as e:
            raise StudioError(f"{name}: {value!r} is not {'an integer' if kind == 'int' else 'a number'}", 422) from e
        if number != number or number in (float("inf"), float("-inf")):
            raise StudioError(f"{name}: not a finite number", 422)
        return str(number)
    if not isinstance(value, str):
        raise StudioError(f"{name}: give a string", 422)
    if isinstance(kind, tuple):
        if value not in kind:
            raise StudioError(f"{name}: {value!r} is not one of {', '.join(kind)}", 422)
        return value
    if kind == "word":
        if not WORD.match(value) or value.startswith("-"):
            raise StudioError(f"{name}: {value!r} is not a plain value", 422)
        return value
    rel = value.strip().rstrip("/")
    if not rel or rel == ".":
        raise StudioError(f"{name}: give a path inside the workspace", 422)
    if kind in ("in", "in+"):
        return relative_name(root, resolve_inside(root, rel)) or "."
    return relative_name(root, output_path(root, rel, name))


def output_path(root: Path, rel: str, what: str) -> Path:
    """A path a job may write: a visible name in an existing folder of the workspace; if it exists, it resolves
    inside the workspace too (no symlink out)."""
    if rel.startswith("/") or "\x00" in rel or "\\" in rel:
        raise StudioError(f"{what}: {rel!r} is not a path inside the workspace", 403)
    folder_rel, _, name = rel.rpartition("/")
    if not is_plain_name(name):
        raise StudioError(f"{what}: {rel!r} is not a name inside the workspace", 403)
    folder = root if not folder_rel else resolve_inside(root, folder_rel)
    if not folder.is_dir():
        raise StudioError(f"{what}: {folder_rel} is not a folder", 422)
    target = folder / name
    if target.is_symlink() or target.exists():
        resolved = target.resolve()
        if not resolved.is_relative_to(root):
            raise StudioError(f"{what}: {rel} leads outside the workspace (symlink): refused", 403)
    return target


# --- the jobs ----------------------------------------------------------------------------------------------------


@dataclass
class Jobs:
    """The workspace's jobs: their folders, and the processes this studio started (to reap them)."""

    folder: Path
    root: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    stopping: set[str] = field(default_factory=set)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def recover(self) -> None:
        """After a (re)start: a job marked running whose process is gone has ended; a live one is followed again."""
        for job in self.list():
            if job["status"] == "running" and job["id"] not in self.procs:
                if _alive(job.get("pid")):
                    threading.Thread(target=self._follow, args=(job["id"], job["pid"]), daemon=True).start()
                else:
                    self._finish(job["id"], "ended", None, note="its process ended while no studio watched it")

    def list(self) -> list[dict[str, Any]]:
        if not self.folder.is_dir():
            return []
        out = []
        for d in sorted(self.folder.iterdir(), reverse=True):
            if JOB_ID.match(d.name) and (d / "job.json").is_file():
                try:
                    out.append(self.read(d.name))
                except StudioError:
                    continue
        return out

    def read(self, job_id: str) -> dict[str, Any]:
        if not JOB_ID.match(job_id):
            raise StudioError(f"{job_id!r}: not a job id", 404)
        try:
            return json.loads((self.folder / job_id / "job.json").read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise StudioError(f"job {job_id}: no such job", 404) from e

    def _write(self, job: dict[str, Any]) -> None:
        write_atomic(self.folder / job["id"] / "job.json", json.dumps(job, indent=1).encode())

    def start(self, command: str, args: dict[str, Any]) -> dict[str, Any]:
        argv = command_line(self.root, command, args)
        job_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
        (self.folder / job_id).mkdir(parents=True)
        job = {"id": job_id, "command": command, "args": args, "argv": argv[1:], "runs": 0}
        with self.lock:
            self._write(job)
            return self._run(job)

    def resume(self, job_id: str) -> dict[str, Any]:
        with self.lock:
            job = self.read(job_id)
            if job["status"] == "running":
                raise StudioError(f"job {job_id} is running", 409)
            command_line(self.root, job["command"], job["args"])  # its paths are checked again
            return self._run(job)

    def _run(self, job: dict[str, Any]) -> dict[str, Any]:
        argv = command_line(self.root, job["command"], job["args"])
        d = self.folder / job["id"]
        env = {**os.environ, **JOB_ENV}
        with open(d / "log.txt", "ab") as log:
            log.write(f"$ facelab {' '.join(argv[3:])}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                argv, cwd=self.root, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,
            )  # fmt: skip
        self.procs[job["id"]] = proc
        self.stopping.discard(job["id"])
        job.update(
            status="running", pid=proc.pid, returncode=None, started=time.time(), ended=None, note=None,
            runs=job.get("runs", 0) + 1,
        )  # fmt: skip
        self._write(job)
        threading.Thread(target=self._reap, args=(job["id"], proc), daemon=True, name=f"job {job['id']}").start()
        return job

    def _reap(self, job_id: str, proc: subprocess.Popen[bytes]) -> None:
        rc = proc.wait()
        status = "stopped" if job_id in self.stopping else "finished" if rc == 0 else "failed"
        with self.lock:
            if self.procs.get(job_id) is proc:
                del self.procs[job_id]
            self._finish(job_id, status, rc)

    def _follow(self, job_id: str, pid: int) -> None:
        """A job started by an earlier studio: wait for its process to go (its return code is not ours to read)."""
        while _alive(pid):
            time.sleep(0.5)
        self._finish(job_id, "stopped" if job_id in self.stopping else "ended", None)

    def _finish(self, job_id: str, status: str, rc: int | None, note: str | None = None) -> None:
        with self.lock:
            job = self.read(job_id)
            if job["status"] != "running":
                return
            # the log's last line first: whoever sees the job ended must also see its whole log
            with open(self.folder / job_id / "log.txt", "ab") as log:
                log.write((f"--- {status}" + ("" if rc is None else f" (return code {rc})") + "\n").encode())
            job.update(status=status, returncode=rc, ended=time.time(), note=note)
            self._write(job)

    def stop(self, job_id: str) -> dict[str, Any]:
        job = self.read(job_id)
        if job["status"] != "running":
            raise StudioError(f"job {job_id} is not running", 409)
        pid = job["pid"]
        self.stopping.add(job_id)
        _signal(pid, signal.SIGINT)
        timer = threading.Timer(
            STOP_GRACE, lambda: self.read(job_id)["status"] == "running" and _signal(pid, signal.SIGTERM)
        )
        timer.daemon = True
        timer.start()
        return job

    def state(self, job_id: str) -> dict[str, Any]:
        """The job, its progress, its log's tail and its images' versions (what the page shows)."""
        job = self.read(job_id)
        log = self.folder / job_id / "log.txt"
        data = _tail(log, PROGRESS_SCAN)
        found = PROGRESS.findall(data[data.rfind(b"$ facelab ") + 1 :])  # this run's, not an earlier one's
        progress: dict[str, Any] = {"done": None, "total": None}
        if found:
            progress["done"], progress["total"] = int(found[-1][0]), int(found[-1][1])
        spec = SPECS[job["command"]]
        images: dict[str, str] = {}
        model = job["args"].get(spec.model) if spec.model else None
        if model:
            folder = self._inside(model)
            if folder is not None:
                for name in IMAGES:
                    p = folder / name
                    if p.is_file():
                        st = p.stat()
                        images[name] = f"{st.st_size:x}-{st.st_mtime_ns:x}"
                it = _iteration(folder)
                if it is not None:
                    progress["iteration"] = it
                if job["args"].get("iters"):
                    progress["target"] = int(job["args"]["iters"])
        tail = data[-LOG_TAIL:].decode("utf-8", "replace")
        return {**job, "progress": progress, "images": images, "log": _last_lines(tail)}

    def image(self, job_id: str, name: str) -> Path:
        job = self.read(job_id)
        spec = SPECS[job["command"]]
        model = job["args"].get(spec.model) if spec.model else None
        folder = self._inside(model) if model and name in IMAGES else None
        if folder is None or not (folder / name).is_file():
            raise StudioError(f"job {job_id}: no {name} yet", 404)
        return resolve_inside(self.root, relative_name(self.root, folder / name))

    def _inside(self, rel: str) -> Path | None:
        try:
            return resolve_inside(self.root, rel.strip("/"))
        except StudioError:
            return None


def _alive(pid: Any) -> bool:
    """Whether ``pid`` is a live facelab process (not a pid reused by something else)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        text = cmdline.read_bytes()
    except OSError:
        return sys.platform != "linux"
    stat = Path(f"/proc/{pid}/stat").read_text(errors="replace") if Path(f"/proc/{pid}/stat").exists() else ""
    return b"facelab" in text and ") Z " not in stat  # a zombie has ended


def _signal(pid: int, sig: int) -> bool:
    """Ctrl+C as a terminal sends it: to the job's process group (its data-loader workers too)."""
    if not _alive(pid):
        return False
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _tail(path: Path, n: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - n))
            return f.read()
    except OSError:
        return b""


def _last_lines(text: str) -> str:
    """The log as a terminal would show it: a progress bar's carriage returns overwrite its line."""
    return "\n".join(
        line.rsplit("\r", 1)[-1] if "\r" in line.rstrip("\r") else line.rstrip("\r") for line in text.split("\n")
    )


def _iteration(model: Path) -> int | None:
    try:
        state = json.loads((model / "checkpoint" / "state.json").read_text())
        return int(state["iteration"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --- page and API ------------------------------------------------------------------------------------------------


def setup(s: Studio) -> None:
    jobs = Jobs(folder=s.data_dir / "jobs", root=s.root)
    s.services["jobs"] = jobs
    jobs.recover()


def warm(s: Studio) -> None:
    s.templates.get_template("jobs.html")


def jobs_of(request: Request) -> Jobs:
    return studio(request).services["jobs"]


class StartRequest(BaseModel):
    command: str
    args: dict[str, Any]


@router.get("/jobs")
def jobs_page(request: Request) -> Response:
    s = studio(request)
    return render(
        request,
        "jobs.html",
        facesets=[f.rel or "." for f in find_facesets(s.root)],
        models=find_models(s.root),
        videos=find_videos(s.root),
        forms=forms_json(),
    )


@router.get("/api/jobs")
def api_list(request: Request) -> dict[str, Any]:
    return {"jobs": jobs_of(request).list()}


@router.post("/api/jobs")
def api_start(request: Request, body: StartRequest) -> dict[str, Any]:
    return jobs_of(request).start(body.command, body.args)


@router.get("/api/jobs/{job_id}")
def api_job(request: Request, job_id: str) -> dict[str, Any]:
    return jobs_of(request).state(job_id)


@router.post("/api/jobs/{job_id}/stop")
def api_stop(request: Request, job_id: str) -> dict[str, Any]:
    return jobs_of(request).stop(job_id)


@router.post("/api/jobs/{job_id}/resume")
def api_resume(request: Request, job_id: str) -> dict[str, Any]:
    return jobs_of(request).resume(job_id)


@router.get("/api/jobs/{job_id}/events")
async def api_events(request: Request, job_id: str) -> Response:
    """Server-sent ``changed`` events with the job's state (``api_job``'s answer) whenever it changes."""
    jobs = jobs_of(request)
    jobs.read(job_id)  # 404 now rather than an empty stream
    return await event_stream(request, lambda: json.dumps(jobs.state(job_id)), interval=0.5)


@router.get("/api/jobs/{job_id}/image/{name}")
def api_image(request: Request, job_id: str, name: str) -> Response:
    """A train job's ``preview.png`` or ``losses.png`` (from its model folder, inside the workspace)."""
    return FileResponse(jobs_of(request).image(job_id, name), headers={"Cache-Control": "no-store"})
