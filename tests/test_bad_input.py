"""Bad input across every command, as one table: each case runs the CLI in-process and checks that it exits
non-zero, that stderr is one ``facelab: error:`` line naming the offending file (after the case's documented
warning lines, each ``facelab: ...``), that nothing prints a traceback, that every input is byte-identical
afterwards (facelab's own index cache aside), and that no empty folder the command created is left behind.

Inputs come from generated data and the package-shipped faces; the model is a tiny one trained for two
iterations once per module. Cases that need a permission to be refused (chmod) skip as root, where it is not;
the disk-full case mounts a 16 KiB tmpfs, so it needs root (and skips without it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import snapshot, write_h264
from facelab.config import ExtractConfig, ModelConfig, TrainConfig
from facelab.demo import write_motion_clip
from facelab.extract.pipeline import extract
from facelab.train.loop import Trainer

TINY = ModelConfig(archi="df-ud", resolution=64, face_type="full", ae_dims=32, e_dims=16, d_dims=16, d_mask_dims=8)
FAST = TrainConfig(batch=2, workers=0, precision="fp32", preview_every=0, autosave_minutes=1e9)
TRAIN_TINY = ["--archi", "df-ud", "--resolution", "64", "--ae-dims", "32", "--e-dims", "16", "--d-dims", "16",
              "--d-mask-dims", "8", "--batch", "2", "--workers", "0", "--precision", "fp32", "--iters", "1"]  # fmt: skip
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def chmod_denies(tmp: Path) -> bool:
    """Whether a chmod-000 file is really unreadable here: not for root (os.geteuid() == 0), unless its
    CAP_DAC_OVERRIDE was dropped (``capsh --drop=cap_dac_override,cap_dac_read_search -- -c 'pytest ...'``)."""
    probe = tmp / ".chmod-probe"
    probe.write_text("x")
    probe.chmod(0)
    try:
        probe.read_text()
    except PermissionError:
        return True
    finally:
        probe.chmod(0o644)
        probe.unlink()
    return False


@dataclass
class Assets:
    """Valid inputs shared by every case (cases copy what they damage)."""

    root: Path
    imgs_a: Path  # two photos of Grace Hopper
    fs_a: Path  # their faceset
    fs_b: Path  # the astronaut's faceset
    clip: Path  # a short clip with a face
    model: Path  # a tiny trained model
    report: Path  # a folder with a minimal report.json


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory, hopper: np.ndarray, astronaut: np.ndarray) -> Assets:
    root = tmp_path_factory.mktemp("bad_input")
    folders = {}
    for name, img in (("a", hopper), ("b", astronaut)):
        imgs = root / f"imgs_{name}"
        imgs.mkdir()
        _imwrite(imgs / f"{name}.png", img)
        _imwrite(imgs / f"{name}_flip.png", np.ascontiguousarray(img[:, ::-1]))
        extract(imgs, root / f"fs_{name}", ExtractConfig(size=128))
        folders[name] = imgs
    clip = write_motion_clip(astronaut, root / "clip.mp4", frames=6, size=128, audio=False)
    Trainer(root / "fs_a", root / "fs_b", root / "model", TINY, FAST).run(iterations=2)
    report = root / "report"
    report.mkdir()
    (report / "report.json").write_text(json.dumps({"version": "test", "metrics": {}}))
    return Assets(root, folders["a"], root / "fs_a", root / "fs_b", clip, root / "model", report)


@dataclass
class Run:
    """What a case runs and checks."""

    argv: list[str | Path]
    inputs: list[Path]  # hashed before and after: must stay byte-identical
    names: list[str]  # the error line must name one of these (the offending file)
    outputs: list[Path] = field(default_factory=list)  # must not be left as empty folders (nor created as such)
    warnings: int = 0  # documented warning lines before the error line


@dataclass
class Case:
    id: str
    build: Callable[[Path, Assets], Run]
    needs_denial: bool = False  # chmod must refuse access: not as root
    needs_mount: bool = False  # mounts a tmpfs: root only


CASES: list[Case] = []


def case(id: str, needs_denial: bool = False, needs_mount: bool = False) -> Callable:
    def register(fn: Callable[[Path, Assets], Run]) -> Callable[[Path, Assets], Run]:
        CASES.append(Case(id, fn, needs_denial, needs_mount))
        return fn

    return register


# --- input makers -----------------------------------------------------------------------------------------------


def _imwrite(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def zero(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def text(path: Path, content: str = "not what the name says\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


def jpeg(path: Path, size: int = 64) -> Path:
    """A plain JPEG (noise, no face, no facelab metadata)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    ok, buf = cv2.imencode(".jpg", rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    path.write_bytes(buf.tobytes())  # whatever the name says
    return path


def cut(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    """The first ``fraction`` of ``src``'s bytes (a download or copy that stopped half-way)."""
    data = src.read_bytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def copy(src: Path, dst: Path) -> Path:
    return Path(shutil.copytree(src, dst) if src.is_dir() else shutil.copy2(src, dst))


def faces_of(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.jpg"))


def cut_faceset(a: Assets, t: Path, every: bool = False) -> Path:
    """A copy of faceset A with its first face (or every face) cut in half; the metadata at the front survives."""
    fs = copy(a.fs_a, t / "fs")
    for p in faces_of(fs) if every else faces_of(fs)[:1]:
        cut(p, p)
    return fs


def model_without(a: Assets, t: Path, damage: str) -> Path:
    """A copy of the model with its checkpoint ``missing``, ``truncated`` or only left as a ``.tmp`` file."""
    m = copy(a.model, t / "model")
    ckpt = m / "checkpoint" / "model.safetensors"
    if damage == "missing":
        shutil.rmtree(m / "checkpoint")
        for b in (m / "backups").glob("*") if (m / "backups").is_dir() else []:
            shutil.rmtree(b)
    elif damage == "truncated":
        cut(ckpt, ckpt, 0.3)
    elif damage == "tmp":
        os.replace(ckpt, ckpt.with_name(".model.safetensors.x1y2.tmp"))
    return m


def noface_clip(t: Path) -> Path:
    rng = np.random.default_rng(1)
    frames = [cv2.GaussianBlur(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), (0, 0), 3) for _ in range(8)]
    return write_h264(t / "noface.mp4", frames)


def unreadable(path: Path) -> Path:
    path.chmod(0)
    return path


def read_only_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o555)
    return path


# --- extract ----------------------------------------------------------------------------------------------------


@case("extract zero-byte video")
def _(t: Path, a: Assets) -> Run:
    v = zero(t / "empty.mp4")
    return Run(["extract", v, "-o", t / "out"], [v], ["empty.mp4"], [t / "out"])


@case("extract truncated video")
def _(t: Path, a: Assets) -> Run:
    v = cut(a.clip, t / "half.mp4", 0.05)
    return Run(["extract", v, "-o", t / "out"], [v], ["half.mp4"], [t / "out"])


@case("extract .jpg that is text")
def _(t: Path, a: Assets) -> Run:
    v = text(t / "photo.jpg")
    return Run(["extract", v, "-o", t / "out"], [v], ["photo.jpg"], [t / "out"])


@case("extract .mp4 that is a JPEG without a face")
def _(t: Path, a: Assets) -> Run:
    v = jpeg(t / "clip.mp4")
    return Run(["extract", v, "-o", t / "out"], [v], ["clip.mp4"], [t / "out"])


@case("extract video with no face in any frame")
def _(t: Path, a: Assets) -> Run:
    v = noface_clip(t)
    return Run(["extract", v, "-o", t / "out"], [v], ["noface.mp4"], [t / "out"])


@case("extract folder without images")
def _(t: Path, a: Assets) -> Run:
    d = t / "docs"
    text(d / "readme.txt")
    return Run(["extract", d, "-o", t / "out"], [d], ["docs"], [t / "out"])


@case("extract folder of unreadable images")
def _(t: Path, a: Assets) -> Run:
    d = t / "frames"
    zero(d / "0001.png")
    text(d / "0002.jpg")
    return Run(["extract", d, "-o", t / "out"], [d], ["frames"], [t / "out"], warnings=2)


@case("extract missing input")
def _(t: Path, a: Assets) -> Run:
    return Run(["extract", t / "nope.mp4", "-o", t / "out"], [], ["nope.mp4"], [t / "out"])


@case("extract -o is an existing file")
def _(t: Path, a: Assets) -> Run:
    o = text(t / "x.txt")
    return Run(["extract", a.imgs_a, "-o", o], [a.imgs_a, o], ["x.txt: exists and is a file, not a folder"])


@case("extract -o is the input folder")
def _(t: Path, a: Assets) -> Run:
    d = copy(a.imgs_a, t / "imgs")
    return Run(["extract", d, "-o", d], [d], ["imgs"])


@case("extract -o below a file")
def _(t: Path, a: Assets) -> Run:
    blocker = text(t / "blocker")
    return Run(["extract", a.imgs_a, "-o", blocker / "out"], [a.imgs_a, blocker], ["blocker"])


@case("extract --only-like photo that is text")
def _(t: Path, a: Assets) -> Run:
    p = text(t / "ref.jpg")
    return Run(["extract", a.imgs_a, "-o", t / "out", "--only-like", p], [a.imgs_a, p], ["ref.jpg"], [t / "out"])


@case("extract unreadable video (chmod 000)", needs_denial=True)
def _(t: Path, a: Assets) -> Run:
    v = unreadable(copy(a.clip, t / "locked.mp4"))
    return Run(["extract", v, "-o", t / "out"], [v], ["locked.mp4"], [t / "out"])


@case("extract unreadable image folder (chmod 000)", needs_denial=True)
def _(t: Path, a: Assets) -> Run:
    d = unreadable(copy(a.imgs_a, t / "imgs"))
    return Run(["extract", d, "-o", t / "out"], [], ["imgs"], [t / "out"])


@case("merge unreadable model folder (chmod 000)", needs_denial=True)
def _(t: Path, a: Assets) -> Run:
    m = unreadable(copy(a.model, t / "model"))
    return Run(["merge", a.clip, "--model", m, "-o", t / "out.mp4"], [a.clip], ["model"])


@case("extract into a read-only folder", needs_denial=True)
def _(t: Path, a: Assets) -> Run:
    ro = read_only_dir(t / "ro")
    return Run(["extract", a.imgs_a, "-o", ro / "out"], [a.imgs_a], ["out"], [ro / "out"])


@case("extract onto a full disk", needs_mount=True)
def _(t: Path, a: Assets) -> Run:
    full = t / "tiny"  # the fixture mounts a 16 KiB tmpfs here
    return Run(["extract", a.imgs_a, "-o", full / "out", "--size", "256"], [a.imgs_a], ["out"])


# --- detect -----------------------------------------------------------------------------------------------------


@case("detect zero-byte image")
def _(t: Path, a: Assets) -> Run:
    p = zero(t / "empty.jpg")
    return Run(["detect", "--json", p], [p], ["empty.jpg"])


@case("detect .jpg that is text")
def _(t: Path, a: Assets) -> Run:
    p = text(t / "notes.jpg")
    return Run(["detect", "--json", p], [p], ["notes.jpg"])


@case("detect folder instead of image")
def _(t: Path, a: Assets) -> Run:
    return Run(["detect", "--json", a.imgs_a], [a.imgs_a], ["imgs_a"])


@case("detect missing image")
def _(t: Path, a: Assets) -> Run:
    return Run(["detect", "--json", t / "gone.png"], [], ["gone.png"])


@case("detect truncated image")
def _(t: Path, a: Assets) -> Run:
    p = cut(a.imgs_a / "a.png", t / "half.png", 0.1)
    return Run(["detect", "--json", p], [p], ["half.png"])


@case("detect unreadable image (chmod 000)", needs_denial=True)
def _(t: Path, a: Assets) -> Run:
    p = unreadable(copy(a.imgs_a / "a.png", t / "locked.png"))
    return Run(["detect", "--json", p], [p], ["locked.png"])


# --- faceset info / sort / dedupe / filter ----------------------------------------------------------------------


@case("faceset info missing folder")
def _(t: Path, a: Assets) -> Run:
    return Run(["faceset", "info", t / "nofs"], [], ["nofs"])


@case("faceset info on a file")
def _(t: Path, a: Assets) -> Run:
    f = faces_of(a.fs_a)[0]
    return Run(["faceset", "info", f], [a.fs_a], [f.name])


@case("faceset info empty folder")
def _(t: Path, a: Assets) -> Run:
    (t / "empty").mkdir()
    return Run(["faceset", "info", t / "empty"], [t / "empty"], ["empty"])


@case("faceset info folder of plain photos (not a faceset)")
def _(t: Path, a: Assets) -> Run:
    d = t / "photos"
    jpeg(d / "p1.jpg")
    jpeg(d / "p2.jpg")
    return Run(["faceset", "info", d], [d], ["photos"], warnings=2)


@case("faceset info zero-byte faces")
def _(t: Path, a: Assets) -> Run:
    d = t / "fs"
    zero(d / "f_0.jpg")
    zero(d / "g_0.jpg")
    return Run(["faceset", "info", d], [d], ["fs"], warnings=2)


@case("faceset info every face cut in half")
def _(t: Path, a: Assets) -> Run:
    fs = cut_faceset(a, t, every=True)
    return Run(["faceset", "info", fs], [fs], ["fs"], warnings=2)


@case("faceset info only an interrupted write (.tmp)")
def _(t: Path, a: Assets) -> Run:
    d = t / "fs"
    d.mkdir()
    cut(faces_of(a.fs_a)[0], d / ".a_0.jpg.k3j4.tmp")
    return Run(["faceset", "info", d], [d], ["fs"])


@case("faceset info --plot is a face of the faceset")
def _(t: Path, a: Assets) -> Run:
    fs = copy(a.fs_a, t / "fs")
    f = faces_of(fs)[0]
    return Run(["faceset", "info", fs, "--plot", f], [fs], [f.name])


@case("faceset info --plot is a folder")
def _(t: Path, a: Assets) -> Run:
    (t / "plots").mkdir()
    return Run(["faceset", "info", a.fs_a, "--plot", t / "plots"], [a.fs_a, t / "plots"], ["plots"])


@case("faceset sort missing folder")
def _(t: Path, a: Assets) -> Run:
    return Run(["faceset", "sort", t / "nofs", "--by", "blur"], [], ["nofs"])


@case("faceset sort --by hist, every face cut in half")
def _(t: Path, a: Assets) -> Run:
    fs = cut_faceset(a, t, every=True)
    return Run(["faceset", "sort", fs, "--by", "hist"], [fs], ["fs"], warnings=2)


@case("faceset sort --by identity --photo missing")
def _(t: Path, a: Assets) -> Run:
    fs = copy(a.fs_a, t / "fs")
    return Run(["faceset", "sort", fs, "--by", "identity", "--photo", t / "me.jpg"], [fs], ["me.jpg"])


@case("faceset sort --by identity --photo that is text")
def _(t: Path, a: Assets) -> Run:
    fs, p = copy(a.fs_a, t / "fs"), text(t / "me.jpg")
    return Run(["faceset", "sort", fs, "--by", "identity", "--photo", p], [fs, p], ["me.jpg"])


@case("faceset sort --by identity --photo without a face")
def _(t: Path, a: Assets) -> Run:
    fs, p = copy(a.fs_a, t / "fs"), jpeg(t / "wall.jpg", 256)
    return Run(["faceset", "sort", fs, "--by", "identity", "--photo", p], [fs, p], ["wall.jpg"])


@case("faceset sort --order-file is a folder")
def _(t: Path, a: Assets) -> Run:
    fs = copy(a.fs_a, t / "fs")
    (t / "order").mkdir()
    return Run(["faceset", "sort", fs, "--by", "blur", "--order-file", t / "order"], [fs, t / "order"], ["order"])


@case("faceset sort --order-file is a face of the faceset")
def _(t: Path, a: Assets) -> Run:
    fs = copy(a.fs_a, t / "fs")
    f = faces_of(fs)[0]
    return Run(["faceset", "sort", fs, "--by", "blur", "--order-file", f], [fs], [f.name])


@case("faceset dedupe on a file")
def _(t: Path, a: Assets) -> Run:
    f = text(t / "list.txt")
    return Run(["faceset", "dedupe", f], [f], ["list.txt"])


@case("faceset dedupe --trash is an existing file")
def _(t: Path, a: Assets) -> Run:
    fs = copy(a.fs_a, t / "fs")
    copy(faces_of(fs)[0], fs / "dup_0.jpg")  # an exact duplicate, so there is something to move
    trash = text(t / "trash")
    return Run(["faceset", "dedupe", fs, "--trash", trash], [fs, trash], ["trash: exists and is a file"])


@case("faceset dedupe --trash is the faceset itself")
def _(t: Path, a: Assets) -> Run:
    fs = copy(a.fs_a, t / "fs")
    copy(faces_of(fs)[0], fs / "dup_0.jpg")
    return Run(["faceset", "dedupe", fs, "--trash", fs], [fs], ["fs"])


@case("faceset dedupe every face cut in half")
def _(t: Path, a: Assets) -> Run:
    fs = cut_faceset(a, t, every=True)
    return Run(["faceset", "dedupe", fs], [fs], ["fs"], warnings=2)


@case("faceset filter folder of plain photos")
def _(t: Path, a: Assets) -> Run:
    d = t / "photos"
    jpeg(d / "p1.jpg")
    return Run(["faceset", "filter", d, "--min-blur", "0"], [d], ["photos"], warnings=1)


@case("faceset filter --trash is an existing file")
def _(t: Path, a: Assets) -> Run:
    fs, trash = copy(a.fs_a, t / "fs"), text(t / "trash")
    argv = ["faceset", "filter", fs, "--min-blur", "1e9", "--trash", trash]  # rejects every face
    return Run(argv, [fs, trash], ["trash: exists and is a file"])


@case("faceset filter unreadable faceset folder (chmod 000)", needs_denial=True)
def _(t: Path, a: Assets) -> Run:
    fs = unreadable(copy(a.fs_a, t / "fs"))
    return Run(["faceset", "filter", fs, "--min-blur", "0"], [], ["fs"])


@case("faceset sort in a read-only faceset", needs_denial=True)
def _(t: Path, a: Assets) -> Run:
    fs = copy(a.fs_a, t / "fs")
    fs.chmod(0o555)
    return Run(["faceset", "sort", fs, "--by", "yaw"], [fs], ["fs"])


# --- faceset import / coverage ----------------------------------------------------------------------------------


@case("faceset import folder without DFL faces")
def _(t: Path, a: Assets) -> Run:
    d = t / "dfl"
    jpeg(d / "00001_0.jpg")
    jpeg(d / "00002_0.jpg")
    return Run(["faceset", "import", d, "-o", t / "out"], [d], ["dfl: no DFL faces imported"], [t / "out"])


@case("faceset import zero-byte DFL face")
def _(t: Path, a: Assets) -> Run:
    d = t / "dfl"
    zero(d / "00001_0.jpg")
    return Run(["faceset", "import", d, "-o", t / "out"], [d], ["dfl: no DFL faces imported"], [t / "out"])


@case("faceset import empty folder")
def _(t: Path, a: Assets) -> Run:
    (t / "dfl").mkdir()
    return Run(["faceset", "import", t / "dfl", "-o", t / "out"], [t / "dfl"], ["dfl"], [t / "out"])


@case("faceset import missing folder")
def _(t: Path, a: Assets) -> Run:
    return Run(["faceset", "import", t / "dfl", "-o", t / "out"], [], ["dfl"], [t / "out"])


@case("faceset import -o is the DFL folder")
def _(t: Path, a: Assets) -> Run:
    d = t / "dfl"
    jpeg(d / "00001_0.jpg")
    return Run(["faceset", "import", d, "-o", d], [d], ["dfl"])


@case("faceset import -o is an existing file")
def _(t: Path, a: Assets) -> Run:
    d, o = t / "dfl", text(t / "x.txt")
    jpeg(d / "00001_0.jpg")
    return Run(["faceset", "import", d, "-o", o], [d, o], ["x.txt: exists and is a file"])


@case("faceset coverage missing dst")
def _(t: Path, a: Assets) -> Run:
    return Run(["faceset", "coverage", a.fs_a, t / "nodst", "--no-plot"], [a.fs_a], ["nodst"])


@case("faceset coverage src is a file")
def _(t: Path, a: Assets) -> Run:
    f = text(t / "src.txt")
    return Run(["faceset", "coverage", f, a.fs_b, "--no-plot"], [f, a.fs_b], ["src.txt"])


@case("faceset coverage src of plain photos")
def _(t: Path, a: Assets) -> Run:
    d = t / "photos"
    jpeg(d / "p1.jpg")
    return Run(["faceset", "coverage", d, a.fs_b, "--no-plot"], [d, a.fs_b], ["photos"], warnings=1)


@case("faceset coverage --png is a face of the dst")
def _(t: Path, a: Assets) -> Run:
    dst = copy(a.fs_b, t / "dst")
    f = faces_of(dst)[0]
    return Run(["faceset", "coverage", a.fs_a, dst, "--png", f], [a.fs_a, dst], [f.name])


# --- train ------------------------------------------------------------------------------------------------------


@case("train empty src faceset")
def _(t: Path, a: Assets) -> Run:
    (t / "src").mkdir()
    argv = ["train", "--src", t / "src", "--dst", a.fs_b, "--model", t / "m", *TRAIN_TINY]
    return Run(argv, [t / "src", a.fs_b], ["src"], [t / "m"])


@case("train missing dst faceset")
def _(t: Path, a: Assets) -> Run:
    argv = ["train", "--src", a.fs_a, "--dst", t / "nodst", "--model", t / "m", *TRAIN_TINY]
    return Run(argv, [a.fs_a], ["nodst"], [t / "m"])


@case("train --model inside the src faceset")
def _(t: Path, a: Assets) -> Run:
    src = copy(a.fs_a, t / "src")
    argv = ["train", "--src", src, "--dst", a.fs_b, "--model", src / "model", *TRAIN_TINY]
    return Run(argv, [src, a.fs_b], ["model"], [src / "model"])


@case("train bad resolution")
def _(t: Path, a: Assets) -> Run:
    argv = ["train", "--src", a.fs_a, "--dst", a.fs_b, "--model", t / "m", *TRAIN_TINY, "--resolution", "7"]
    return Run(argv, [a.fs_a, a.fs_b], ["resolution"], [t / "m"])


@case("train bad architecture")
def _(t: Path, a: Assets) -> Run:
    argv = ["train", "--src", a.fs_a, "--dst", a.fs_b, "--model", t / "m", *TRAIN_TINY, "--archi", "xyz"]
    return Run(argv, [a.fs_a, a.fs_b], ["xyz"], [t / "m"])


@case("train --model is an existing file")
def _(t: Path, a: Assets) -> Run:
    m = text(t / "m.txt")
    argv = ["train", "--src", a.fs_a, "--dst", a.fs_b, "--model", m, *TRAIN_TINY]
    return Run(argv, [a.fs_a, a.fs_b, m], ["m.txt: exists and is a file"])


@case("train --model with a corrupt config.json")
def _(t: Path, a: Assets) -> Run:
    m = t / "m"
    text(m / "config.json", "{not json")
    argv = ["train", "--src", a.fs_a, "--dst", a.fs_b, "--model", m, *TRAIN_TINY]
    return Run(argv, [a.fs_a, a.fs_b, m], ["config.json"])


@case("train resume from a truncated checkpoint")
def _(t: Path, a: Assets) -> Run:
    m = model_without(a, t, "truncated")
    argv = ["train", "--src", a.fs_a, "--dst", a.fs_b, "--model", m, "--iters", "3"]
    return Run(argv, [a.fs_a, a.fs_b, m / "checkpoint"], ["checkpoint"])


@case("train src faceset of plain photos")
def _(t: Path, a: Assets) -> Run:
    d = t / "photos"
    jpeg(d / "p1.jpg")
    argv = ["train", "--src", d, "--dst", a.fs_b, "--model", t / "m", *TRAIN_TINY]
    return Run(argv, [d, a.fs_b], ["p1.jpg", "photos"], [t / "m"])


@case("train src and dst the same faceset")
def _(t: Path, a: Assets) -> Run:
    argv = ["train", "--src", a.fs_a, "--dst", a.fs_a, "--model", t / "m", *TRAIN_TINY]
    return Run(argv, [a.fs_a], ["fs_a"], [t / "m"])


# --- augment ----------------------------------------------------------------------------------------------------


@case("augment train missing faceset")
def _(t: Path, a: Assets) -> Run:
    return Run(["augment", "train", "--faceset", t / "nofs", "--out", t / "gan", "--kimg", "0.01"], [], ["nofs"],
               [t / "gan"])  # fmt: skip


@case("augment train faceset of plain photos")
def _(t: Path, a: Assets) -> Run:
    d = t / "photos"
    jpeg(d / "p1.jpg")
    argv = ["augment", "train", "--faceset", d, "--out", t / "gan", "--kimg", "0.01"]
    return Run(argv, [d], ["p1.jpg", "photos"], [t / "gan"])


@case("augment train --out is an existing file")
def _(t: Path, a: Assets) -> Run:
    o = text(t / "gan.txt")
    argv = ["augment", "train", "--faceset", a.fs_a, "--out", o, "--kimg", "0.01"]
    return Run(argv, [a.fs_a, o], ["gan.txt: exists and is a file"])


@case("augment export --gan missing, --out a folder")
def _(t: Path, a: Assets) -> Run:
    (t / "out").mkdir()
    return Run(["augment", "export", "--gan", t / "gan", "--out", t / "out"], [t / "out"], ["gan", "out"])


@case("augment sample --gan missing")
def _(t: Path, a: Assets) -> Run:
    fs = copy(a.fs_a, t / "fs")
    return Run(["augment", "sample", "--gan", t / "gan", "--faceset", fs, "-n", "1"], [fs], ["gan"])


@case("augment sample --gan folder without checkpoint")
def _(t: Path, a: Assets) -> Run:
    fs = copy(a.fs_a, t / "fs")
    (t / "gan").mkdir()
    return Run(["augment", "sample", "--gan", t / "gan", "--faceset", fs, "-n", "1"], [fs, t / "gan"], ["gan"])


@case("augment sample --gan .safetensors that is text")
def _(t: Path, a: Assets) -> Run:
    fs, g = copy(a.fs_a, t / "fs"), text(t / "G.safetensors")
    return Run(["augment", "sample", "--gan", g, "--faceset", fs, "-n", "1"], [fs, g], ["G.safetensors"])


@case("augment sample --gan is a swap model, not a generator")
def _(t: Path, a: Assets) -> Run:
    fs = copy(a.fs_a, t / "fs")
    return Run(["augment", "sample", "--gan", a.model, "--faceset", fs, "-n", "1"], [fs, a.model], ["model"])


@case("augment render --faceset missing")
def _(t: Path, a: Assets) -> Run:
    argv = ["augment", "render", "--faceset", t / "fs", "--out", t / "out", "--yaw", "20"]
    return Run(argv, [], ["fs"], outputs=[t / "out"])


@case("augment render faces without usable landmarks (noise with copied metadata)")
def _(t: Path, a: Assets) -> Run:
    from facelab.faceset.store import face_files, read_face, write_face

    fs = t / "fs"
    fs.mkdir()
    rng = np.random.default_rng(0)
    for f in face_files(a.fs_a):
        img, meta = read_face(f)
        write_face(fs / f.name, rng.integers(0, 255, img.shape, dtype=np.uint8), meta)
    argv = ["augment", "render", "--faceset", fs, "--out", t / "out", "--yaw", "20"]
    return Run(argv, [fs], ["fs"], outputs=[t / "out"])


@case("augment render --yaw out of range")
def _(t: Path, a: Assets) -> Run:
    argv = ["augment", "render", "--faceset", a.fs_a, "--out", t / "out", "--yaw", "10,60"]
    return Run(argv, [a.fs_a], ["--yaw 60"], outputs=[t / "out"])


@case("augment render --fill --dst without faces")
def _(t: Path, a: Assets) -> Run:
    (t / "dst").mkdir()
    argv = ["augment", "render", "--faceset", a.fs_a, "--out", t / "out", "--fill", "--dst", t / "dst"]
    return Run(argv, [a.fs_a, t / "dst"], ["dst"], outputs=[t / "out"])


@case("augment render --out is the faceset")
def _(t: Path, a: Assets) -> Run:
    fs = copy(a.fs_a, t / "fs")
    return Run(["augment", "render", "--faceset", fs, "--out", fs, "--yaw", "20"], [fs], ["fs"])


@case("augment export --gan missing")
def _(t: Path, a: Assets) -> Run:
    return Run(["augment", "export", "--gan", t / "gan", "--out", t / "G.safetensors"], [], ["gan"])


@case("augment export --gan zero-byte checkpoint")
def _(t: Path, a: Assets) -> Run:
    g = t / "gan"
    zero(g / "checkpoint" / "model.safetensors")
    return Run(["augment", "export", "--gan", g, "--out", t / "G.safetensors"], [g], ["gan", "model.safetensors"])


# --- merge / swap / inspect -------------------------------------------------------------------------------------


@case("merge zero-byte dst video")
def _(t: Path, a: Assets) -> Run:
    v = zero(t / "dst.mp4")
    return Run(["merge", v, "--model", a.model, "-o", t / "out.mp4"], [v, a.model], ["dst.mp4"])


@case("merge dst .mp4 that is text")
def _(t: Path, a: Assets) -> Run:
    v = text(t / "dst.mp4")
    return Run(["merge", v, "--model", a.model, "-o", t / "out.mp4"], [v, a.model], ["dst.mp4"])


@case("merge --model folder without checkpoint")
def _(t: Path, a: Assets) -> Run:
    m = model_without(a, t, "missing")
    return Run(["merge", a.clip, "--model", m, "-o", t / "out.mp4"], [a.clip, m], ["model"])


@case("merge --model with a truncated checkpoint")
def _(t: Path, a: Assets) -> Run:
    m = model_without(a, t, "truncated")
    return Run(["merge", a.clip, "--model", m, "-o", t / "out.mp4"], [a.clip, m], ["model"])


@case("merge --model whose checkpoint write was interrupted (.tmp)")
def _(t: Path, a: Assets) -> Run:
    m = model_without(a, t, "tmp")
    return Run(["merge", a.clip, "--model", m, "-o", t / "out.mp4"], [a.clip, m], ["model"])


@case("merge --model is a file")
def _(t: Path, a: Assets) -> Run:
    m = a.model / "checkpoint" / "model.safetensors"
    return Run(["merge", a.clip, "--model", m, "-o", t / "out.mp4"], [a.clip, a.model], ["model.safetensors"])


@case("merge --faceset of plain photos")
def _(t: Path, a: Assets) -> Run:
    d = t / "photos"
    jpeg(d / "p1.jpg")
    argv = ["merge", a.clip, "--model", a.model, "-o", t / "out.mp4", "--faceset", d]
    return Run(argv, [a.clip, a.model, d], ["photos"], warnings=1)


@case("merge -o is the dst video")
def _(t: Path, a: Assets) -> Run:
    v = copy(a.clip, t / "dst.mp4")
    return Run(["merge", v, "--model", a.model, "-o", v], [v, a.model], ["dst.mp4"])


@case("merge -o a new frames folder, model without checkpoint")
def _(t: Path, a: Assets) -> Run:
    m = model_without(a, t, "missing")
    return Run(["merge", a.clip, "--model", m, "-o", t / "frames/"], [a.clip, m], ["model"], [t / "frames"])


@case("merge missing dst")
def _(t: Path, a: Assets) -> Run:
    return Run(["merge", t / "nodst.mp4", "--model", a.model, "-o", t / "o.mp4"], [a.model], ["nodst.mp4"])


@case("swap missing src")
def _(t: Path, a: Assets) -> Run:
    argv = ["swap", t / "nosrc.mp4", a.clip, "-o", t / "out.mp4", "--iters", "1"]
    return Run(argv, [a.clip], ["nosrc.mp4"], [t / "out.facelab"])


@case("swap zero-byte dst")
def _(t: Path, a: Assets) -> Run:
    v = zero(t / "dst.mp4")
    argv = ["swap", a.imgs_a, v, "-o", t / "out.mp4", "--iters", "1"]
    return Run(argv, [a.imgs_a, v], ["dst.mp4"], [t / "out.facelab"])


@case("swap -o is the dst video")
def _(t: Path, a: Assets) -> Run:
    v = copy(a.clip, t / "dst.mp4")
    argv = ["swap", a.imgs_a, v, "-o", v, "--iters", "1"]
    return Run(argv, [a.imgs_a, v], ["dst.mp4"], [t / "dst.facelab"])


@case("swap --pretrained is not a pretrained model")
def _(t: Path, a: Assets) -> Run:
    argv = ["swap", a.imgs_a, a.clip, "-o", t / "out.mp4", "--iters", "1", "--pretrained", a.model]
    return Run(argv, [a.imgs_a, a.clip, a.model], [a.model.name], [t / "out.facelab"])


@case("train --pretrained is not a pretrained model")
def _(t: Path, a: Assets) -> Run:
    argv = ["train", "--src", a.fs_a, "--dst", a.fs_b, "--model", t / "m", "--pretrained", a.model]
    return Run(argv, [a.fs_a, a.model], [a.model.name], [t / "m"])


@case("inspect zero-byte video")
def _(t: Path, a: Assets) -> Run:
    v = zero(t / "v.mp4")
    return Run(["inspect", v], [v], ["v.mp4"])


@case("inspect .mp4 that is text")
def _(t: Path, a: Assets) -> Run:
    v = text(t / "v.mp4")
    return Run(["inspect", v], [v], ["v.mp4"])


@case("inspect folder")
def _(t: Path, a: Assets) -> Run:
    return Run(["inspect", a.imgs_a], [a.imgs_a], ["imgs_a"])


@case("inspect missing file")
def _(t: Path, a: Assets) -> Run:
    return Run(["inspect", t / "gone.mp4"], [], ["gone.mp4"])


# --- fid / evaluate / export ------------------------------------------------------------------------------------


@case("fid missing folder")
def _(t: Path, a: Assets) -> Run:
    return Run(["fid", a.fs_a, t / "nob"], [a.fs_a], ["nob"])


@case("fid folder without images")
def _(t: Path, a: Assets) -> Run:
    d = t / "docs"
    text(d / "a.txt")
    return Run(["fid", a.fs_a, d], [a.fs_a, d], ["docs"])


@case("fid a file instead of a folder")
def _(t: Path, a: Assets) -> Run:
    f = faces_of(a.fs_a)[0]
    return Run(["fid", f, a.fs_b], [a.fs_a, a.fs_b], [f.name])


@case("fid --inception-weights that is text")
def _(t: Path, a: Assets) -> Run:
    w = text(t / "inception.pth")
    return Run(["fid", a.fs_a, a.fs_b, "--inception-weights", w], [a.fs_a, a.fs_b, w], ["inception.pth"])


@case("evaluate missing src faceset")
def _(t: Path, a: Assets) -> Run:
    argv = ["evaluate", "--src", t / "nofs", "--dst", a.clip, "--swapped", a.clip, "-o", t / "rep", "--no-fid"]
    return Run(argv, [a.clip], ["nofs"], [t / "rep"])


@case("evaluate zero-byte dst video")
def _(t: Path, a: Assets) -> Run:
    v = zero(t / "dst.mp4")
    argv = ["evaluate", "--src", a.fs_a, "--dst", v, "--swapped", a.clip, "-o", t / "rep", "--no-fid"]
    return Run(argv, [a.fs_a, v, a.clip], ["dst.mp4"], [t / "rep"])


@case("evaluate swapped .mp4 that is text")
def _(t: Path, a: Assets) -> Run:
    v = text(t / "swapped.mp4")
    argv = ["evaluate", "--src", a.fs_a, "--dst", a.clip, "--swapped", v, "-o", t / "rep", "--no-fid"]
    return Run(argv, [a.fs_a, a.clip, v], ["swapped.mp4"], [t / "rep"])


@case("evaluate -o inside the src faceset")
def _(t: Path, a: Assets) -> Run:
    src = copy(a.fs_a, t / "src")
    argv = ["evaluate", "--src", src, "--dst", a.clip, "--swapped", a.clip, "-o", src / "rep", "--no-fid"]
    return Run(argv, [src, a.clip], ["rep"], [src / "rep"])


@case("evaluate -o is an existing file")
def _(t: Path, a: Assets) -> Run:
    o = text(t / "rep.txt")
    argv = ["evaluate", "--src", a.fs_a, "--dst", a.clip, "--swapped", a.clip, "-o", o, "--no-fid"]
    return Run(argv, [a.fs_a, a.clip, o], ["rep.txt: exists and is a file"])


@case("evaluate compare missing path")
def _(t: Path, a: Assets) -> Run:
    return Run(["evaluate", "compare", a.report, t / "gone"], [a.report], ["gone"])


@case("evaluate compare folder without report.json")
def _(t: Path, a: Assets) -> Run:
    (t / "run2").mkdir()
    return Run(["evaluate", "compare", a.report, t / "run2"], [a.report, t / "run2"], ["run2"])


@case("evaluate compare non-JSON file")
def _(t: Path, a: Assets) -> Run:
    f = text(t / "notes.json", "metrics: good\n")
    return Run(["evaluate", "compare", f, a.report], [a.report, f], ["notes.json"])


@case("evaluate compare JSON that is not a report")
def _(t: Path, a: Assets) -> Run:
    f = text(t / "other.json", "[1, 2, 3]")
    return Run(["evaluate", "compare", a.report, f], [a.report, f], ["other.json"])


@case("evaluate compare zero-byte report.json")
def _(t: Path, a: Assets) -> Run:
    zero(t / "run2" / "report.json")
    return Run(["evaluate", "compare", a.report, t / "run2"], [a.report, t / "run2"], ["report.json"])


@case("evaluate compare report folder with an interrupted write (.tmp)")
def _(t: Path, a: Assets) -> Run:
    d = t / "run2"
    cut(a.report / "report.json", d / ".report.json.a1b2.tmp")
    return Run(["evaluate", "compare", a.report, d], [a.report, d], ["run2"])


@case("export --model missing")
def _(t: Path, a: Assets) -> Run:
    return Run(["export", "--model", t / "nomodel", "-o", t / "swap.pt"], [], ["nomodel"])


@case("export --model folder without checkpoint")
def _(t: Path, a: Assets) -> Run:
    m = model_without(a, t, "missing")
    return Run(["export", "--model", m, "-o", t / "swap.pt"], [m], ["model"])


@case("export --model with a truncated checkpoint")
def _(t: Path, a: Assets) -> Run:
    m = model_without(a, t, "truncated")
    return Run(["export", "--model", m, "-o", t / "swap.pt"], [m], ["model"])


@case("export -o is an existing folder")
def _(t: Path, a: Assets) -> Run:
    (t / "out").mkdir()
    return Run(["export", "--model", a.model, "-o", t / "out"], [a.model, t / "out"], ["out"])


@case("export -o in a folder that does not exist")
def _(t: Path, a: Assets) -> Run:
    return Run(["export", "--model", a.model, "-o", t / "no" / "swap.pt"], [a.model], ["swap.pt"], [t / "no"])


@case("export -o is the model's own checkpoint")
def _(t: Path, a: Assets) -> Run:
    m = copy(a.model, t / "model")
    return Run(["export", "--model", m, "-o", m / "checkpoint" / "model.safetensors"], [m], ["model.safetensors"])


# --- the runner -------------------------------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 KiB tmpfs at ``tmp_path/tiny`` (root only), so a write runs out of space after a face or two."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.decode(errors='replace').strip()})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_the_table_covers_every_command() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)
    commands = {" ".join(c.id.split()[:2]) if c.id.split()[0] in ("faceset", "augment") else c.id.split()[0]
                for c in CASES}  # fmt: skip
    assert commands >= {
        "extract", "detect", "faceset info", "faceset sort", "faceset dedupe", "faceset filter", "faceset import",
        "faceset coverage", "train", "augment render", "augment train", "augment sample", "augment export", "merge",
        "swap",
        "inspect", "fid", "evaluate", "export",
    }  # fmt: skip


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input(c: Case, assets: Assets, tmp_path: Path, run_cli, request: pytest.FixtureRequest) -> None:
    if c.needs_denial and not chmod_denies(tmp_path):
        pytest.skip("running as root (os.geteuid() == 0): chmod does not deny root, so this refusal cannot happen")
    if c.needs_mount:
        if not IS_ROOT:
            pytest.skip("mounting a tmpfs to fill the disk needs root")
        request.getfixturevalue("tiny_disk")
    r = c.build(tmp_path, assets)
    before = snapshot(r.inputs)
    try:
        rc, out, err = run_cli(r.argv)
        after = snapshot(r.inputs)  # before the modes are restored: a chmod-000 input is compared by mode and size
    finally:
        for p in [tmp_path, *tmp_path.rglob("*")]:  # undo chmod so the checks (and pytest's cleanup) can read
            if not p.is_symlink():
                p.chmod(0o755 if p.is_dir() else 0o644)
    assert "Traceback" not in out + err
    assert rc != 0, f"exit 0 for bad input; stdout: {out!r}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("facelab: error: "), err
    assert len(lines) == 1 + r.warnings, f"expected {r.warnings} warning line(s) then the error:\n{err}"
    assert all(line.startswith("facelab: ") for line in lines[:-1]), err
    assert any(name in lines[-1] for name in r.names), f"the error does not name {r.names}: {lines[-1]}"
    assert after == before, "an input changed"
    for o in r.outputs:
        assert not (o.is_dir() and not any(o.iterdir())), f"{o}: empty folder left behind"


def test_no_empty_dirs_left_removes_only_the_empty_folders_it_made(tmp_path: Path) -> None:
    from facelab.io.atomic import no_empty_dirs_left

    (tmp_path / "old").mkdir()
    with pytest.raises(RuntimeError), no_empty_dirs_left(tmp_path / "old", tmp_path / "a" / "b", tmp_path / "c"):
        (tmp_path / "a" / "b" / "deep").mkdir(parents=True)
        (tmp_path / "c" / "sub").mkdir(parents=True)
        (tmp_path / "c" / "kept.txt").write_text("a file is never removed")
        raise RuntimeError
    assert (tmp_path / "old").is_dir()  # was there before
    assert not (tmp_path / "a").exists()  # made, and empty all the way down
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["kept.txt"]
    with no_empty_dirs_left(tmp_path / "d"):  # success keeps what was made
        (tmp_path / "d").mkdir()
    assert (tmp_path / "d").is_dir()
