"""Swap quality per CPU-minute: train recipes on a real pair and score each at 10, 20, 40 and 60 minutes.

For every recipe (a preset, optionally with options on top: ``cpu-quick`` or ``cpu-quick:eyes_mouth_prio=true``)
the same extracted pair is trained from scratch; at each checkpoint the dst video is merged with the model and
scored by ``facelab evaluate`` (FaceMesh landmarks, so gaze is measured; no FID): eye- and mouth-openness
correlation between dst and swapped frames (aspect ratios of the 68 points), gaze error, sharpness relative to the
src faces, dlib distance to the src and to the dst, pose error. Everything is resumable: rerun the same command to
continue where it stopped.

Minutes are training minutes on this machine, counted in iterations: each recipe first times its own iterations
(three windows of 10 after 5 to warm up; the fastest window's ms/it is printed and kept in ``probe.json``), and
"10 minutes" is then the iterations that take 10 minutes at that speed. So the curves do not depend on what else
the machine did during the hours they take; run it on an idle machine for the probe's sake. ``--wall`` trains by wall minutes instead.
A recipe with ``lr_schedule=budget`` plans for the last checkpoint: the earlier ones are snapshots of that plan
(its learning rate not yet decayed), not what a shorter budget would give.

Controls and variants: ``--perfect`` scores the dst's own faces sent through each recipe's crop and back (a
perfect model of that resolution: the most its eye and mouth correlations can reach on this dst), and the table
notes the sharpness such a model keeps; ``--remerge sharpen=gaussian+sharpen_amount=6`` merges each recipe's last
model again with other merge options and scores it; ``--warm-start MIN`` starts every recipe from a model
pretrained for MIN minutes (DFL's pretrain mode) on the other unnamed people's videos, never the pair's.

On a GPU (``benchmarks/quality_gpu.sh``, one device call): ``--no-score`` trains and merges only (the device has no
dlib or MediaPipe for the scoring); the same command run here afterwards, on the returned folder, scores each
checkpoint from its ``swapped.mp4`` without training again.

Usage: .venv/bin/python benchmarks/quality_per_hour.py [--pair p7_to_p6] [--recipes cpu-quick,cpu]
                                                     [--checkpoints 10,20,40,60] [--strip] [--perfect]
                                                     [--remerge OPTS] [--warm-start MIN]
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

if __package__ in (None, ""):  # run as `python benchmarks/quality_per_hour.py`: make `benchmarks` importable
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks.common import REPO, data_parser, fmt, print_table, require_data, require_pair, write_json  # noqa: E402
from facelab.config import ExtractConfig, MergeConfig, ModelConfig, TrainConfig  # noqa: E402
from facelab.evaluate.metrics import METRICS_VERSION  # noqa: E402
from facelab.evaluate.report import evaluate  # noqa: E402
from facelab.extract.pipeline import SUMMARY_FILE, extract  # noqa: E402
from facelab.faceset.index import load_metas  # noqa: E402
from facelab.faceset.store import read_face  # noqa: E402
from facelab.geometry.align import align_face  # noqa: E402
from facelab.geometry.facetype import FaceType  # noqa: E402
from facelab.imaging.masks import hull_mask  # noqa: E402
from facelab.imaging.sharpness import laplacian_sharpness  # noqa: E402
from facelab.io.atomic import write_atomic  # noqa: E402
from facelab.io.media import iter_frames  # noqa: E402
from facelab.io.video import VideoWriter, synthetic_tag  # noqa: E402
from facelab.merge.pipeline import merge  # noqa: E402
from facelab.train.loop import Trainer  # noqa: E402
from facelab.train.samples import recrop  # noqa: E402
from facelab.train.warm import start_from_pretrained  # noqa: E402

PROBE_WARMUP, PROBE_ITERS, PROBE_WINDOWS = 5, 10, 3
from facelab.train.presets import with_preset  # noqa: E402

# (report key, column title, digits); identity and pose keys are facelab evaluate's
COLUMNS = (
    ("eye_follow", "eye r", 2),
    ("mouth_follow", "mouth r", 2),
    ("gaze_err", "gaze", 3),
    ("sharpness_ratio", "sharp/src", 2),
    ("id_dist_src", "id->src", 3),
    ("id_dist_dst", "id->dst", 3),
    ("pose_err_l2", "pose deg", 1),
)


def parse_recipe(spec: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``"preset:key=value,key=value"`` -> (preset, ModelConfig options, TrainConfig options), values typed by the
    config field they set."""
    name, _, opts = spec.partition(":")
    model_opts: dict[str, Any] = {}
    train_opts: dict[str, Any] = {}
    for item in filter(None, opts.split(",")):
        key, _, text = item.partition("=")
        for cls, into in ((ModelConfig, model_opts), (TrainConfig, train_opts)):
            field = next((f for f in fields(cls) if f.name == key), None)
            if field is not None:
                into[key] = _typed(getattr(cls(), key), text)
                break
        else:
            raise SystemExit(f"recipe {spec!r}: {key!r} is not a model or training option")
    return name, model_opts, train_opts


def _typed(default: Any, text: str) -> Any:
    if isinstance(default, bool):
        return text.lower() in ("1", "true", "yes", "y")
    return type(default)(text)


def _slug(spec: str) -> str:
    """A recipe as a folder name: ``cpu-quick:lr=1e-4,batch=8`` -> ``cpu-quick_lr-1e-4_batch-8``."""
    return spec.replace(":", "_").replace(",", "_").replace("=", "-")


def recipe_folder(out: Path, spec: str, warm: float) -> Path:
    """Where a recipe's model, probe, curve and checkpoints live (a warm-started one apart from the cold one)."""
    return out / (f"{_slug(spec)}_warm{warm:g}" if warm else _slug(spec))


def merge_options(text: str) -> dict[str, Any]:
    """``"sharpen=gaussian+sharpen_amount=6"`` -> MergeConfig options, typed by their fields."""
    opts: dict[str, Any] = {}
    for item in filter(None, text.split("+")):
        key, _, value = item.partition("=")
        if key not in {f.name for f in fields(MergeConfig)}:
            raise SystemExit(f"--remerge {text!r}: {key!r} is not a merge option")
        default = getattr(MergeConfig(), key)
        opts[key] = value if default is None else _typed(default, value)
    return opts


def remerge(spec: str, out: Path, sides: dict[str, Path], dst_video: Path, text: str, warm: float) -> dict[str, Any]:
    """The recipe's last model merged again with other merge options (sharpening, say) and scored: the training
    is not repeated, so this is the last checkpoint only."""
    folder = recipe_folder(out, spec, warm)
    curve = json.loads((folder / "curve.json").read_text())
    last = max(curve, key=lambda p: p["minutes"])
    at = folder / f"at_{last['minutes']:g}min_{text.replace('+', '_').replace('=', '-')}"
    path = at / "point.json"
    if not path.exists() or rescore(json.loads(path.read_text())):
        if not (at / "swapped.mp4").exists():
            merge(dst_video, folder / "model", at / "swapped.mp4", replace(MergeConfig(), **merge_options(text)),
                  faceset=sides["dst"])  # fmt: skip
        point = {**last, "merge": text, **score(dst_video, sides, at)}
        write_atomic(path, json.dumps(point, indent=1).encode())
    return json.loads(path.read_text())


def facesets(data: Path, pair: dict[str, Any], out: Path) -> dict[str, Path]:
    """Both sides extracted once (whole face, 256 px) and reused by every recipe (a finished one is not opened
    again, so a carried faceset needs no detector)."""
    sides = {}
    for side, rel in (("src", pair["src"][0]), ("dst", pair["dst"])):
        sides[side] = out / f"faceset_{side}"
        if not (sides[side] / SUMMARY_FILE).is_file():
            extract(data / rel, sides[side], ExtractConfig(face_type="whole_face", size=256))
    return sides


def pretrain_pool(data: Path, pair: dict[str, Any], out: Path) -> list[Path]:
    """The warm start's pretraining facesets: every other unnamed person's video (``videos/person_<id>_*``, never a
    person of the pair), extracted like the pair; pooled by the trainer into one set, as DFL's pretrain faces."""
    held = {_person(rel) for rel in [*pair["src"], pair["dst"]]}
    pool = []
    for video in sorted((data / "videos").glob("person_*.mp4")):
        if _person(video.name) in held:
            continue
        faces = out / "pretrain" / f"faceset_{video.stem}"
        if not (faces / SUMMARY_FILE).is_file():
            extract(video, faces, ExtractConfig(face_type="whole_face", size=256))
        pool.append(faces)
    return pool


def _person(rel: str) -> str:
    """``videos/person_p7_lp_s20.mp4`` -> ``p7``."""
    return Path(rel).name.split("_")[1]


def pretrain(pool: list[Path], folder: Path, minutes: float, ms: float, mcfg: Any, tcfg: Any, given: set[str]) -> Path:
    """DFL's pretrain mode on the pool for ``minutes`` (counted in iterations at the recipe's probed speed), once
    per recipe and budget; resumable. Returns the model folder a warm-started recipe copies."""
    model = folder / "model"
    trainer = Trainer(pool, None, model, mcfg, replace(tcfg, pretrain=True), given | {"pretrain"})
    target = max(1, round(minutes * 60000 / ms))
    if trainer.iteration < target:
        print(f"pretraining {folder.name}: {target} iterations on {len(pool)} other people", flush=True)
        trainer.run(iterations=target)
    return model


def score(dst_video: Path, sides: dict[str, Path], at: Path) -> dict[str, Any]:
    """Evaluate a checkpoint's merged dst (``at/swapped.mp4``); returns the report's metrics."""
    res = evaluate(sides["src"], dst_video, at / "swapped.mp4", at / "report", with_fid=False, landmarker="facemesh")
    return {**{k: v.get("value") for k, v in res.metrics.items()}, "metrics_version": METRICS_VERSION}


def rescore(point: dict[str, Any]) -> bool:
    """Whether a stored point must be scored (again): not yet scored, or by other metric definitions (its merged
    video is kept, so only ``facelab evaluate`` runs again)."""
    return point.get("scored") is False or point.get("metrics_version") != METRICS_VERSION


def sharpness_ceiling(src: Path, face_type: str, resolution: int, n: int = 60) -> float:
    """sharp/src of a perfect model: the src faces themselves re-cropped to the model's face type and resolution and
    warped back (the merge's round trip), over the same faces untouched. A swap cannot be sharper than this without
    merge sharpening or a higher resolution."""
    metas = load_metas(src)
    before, after = [], []
    for path, _ in metas[:: max(1, len(metas) // n)]:
        img, meta = read_face(path)
        crop, m = recrop(img, meta, FaceType.parse(face_type), resolution)
        flags = cv2.WARP_INVERSE_MAP | cv2.INTER_CUBIC
        back = cv2.warpAffine(crop, m, img.shape[1::-1], flags=flags, borderMode=cv2.BORDER_REPLICATE)
        before.append(laplacian_sharpness(img, meta.landmarks, region="inner"))  # as evaluate measures it
        after.append(laplacian_sharpness(back, meta.landmarks, region="inner"))
    return float(np.mean(after) / np.mean(before))


def perfect_model(
    dst_video: Path, sides: dict[str, Path], face_type: str, resolution: int, out: Path
) -> dict[str, Any]:
    """The control for every figure: what a perfect model of this face type and resolution would give - each dst
    face sent through the model's crop and back, pasted inside its landmark hull as the merge pastes, then scored
    like a swap. Its eye and mouth correlations are the most a swap at this resolution can reach on this dst (the
    re-detected landmarks of a 96 px face are noisy), its identity is the dst's own."""
    path = out / "point.json"
    if path.exists() and not rescore(json.loads(path.read_text())):
        return json.loads(path.read_text())
    faces = {m.frame_index: m for _, m in load_metas(sides["dst"]) if m.face_index == 0}
    tag = synthetic_tag(f"perfect-model-control {face_type} {resolution}")  # a degraded dst is still made media
    with VideoWriter(out / "swapped.mp4", dst_video, copy_audio=False, metadata=tag) as writer:
        for f in iter_frames(dst_video):
            meta, img = faces.get(f.index), f.image
            if meta is not None:
                crop, m = align_face(img, meta.source_landmarks, face_type, resolution)
                h, w = img.shape[:2]
                back = cv2.warpAffine(crop, m, (w, h), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_CUBIC)
                a = cv2.GaussianBlur(hull_mask((h, w), meta.source_landmarks), (0, 0), resolution / 48)[..., None]
                img = np.round(img * (1 - a) + back * a).astype(np.uint8)
            writer.write(img, f.timestamp)
    point = {"minutes": 0.0, "iterations": 0, **score(dst_video, sides, out)}
    write_atomic(path, json.dumps(point, indent=1).encode())
    return point


def strip(dst_video: Path, swapped: Path, dst_faceset: Path, out_png: Path, n: int = 8) -> None:
    """n evenly spaced frames cut around the dst face (from its faceset), dst above the swap, as one PNG."""
    rects = {m.frame_index: m.source_rect for _, m in load_metas(dst_faceset) if m.face_index == 0}
    dst = {f.index: f.image for f in iter_frames(dst_video)}
    swp = {f.index: f.image for f in iter_frames(swapped)}
    shown = [i for i in sorted(rects) if i in dst and i in swp]
    idx = [shown[k] for k in np.linspace(0, len(shown) - 1, n).astype(int)] if shown else []

    def tile(img: np.ndarray, rect: tuple[float, ...]) -> np.ndarray:
        cx, cy, side = (rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2, 1.6 * max(rect[2] - rect[0], rect[3] - rect[1])
        m = np.array([[200 / side, 0, 100 - cx * 200 / side], [0, 200 / side, 100 - cy * 200 / side]])
        return cv2.warpAffine(img, m, (200, 200), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)

    rows = [np.concatenate([tile(frames[i], rects[i]) for i in idx], axis=1) for frames in (dst, swp)] if idx else []
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR)) if rows else (0, 0)
    if ok:
        write_atomic(out_png, buf.tobytes())


def probe(folder: Path, sides: dict[str, Path], mcfg: Any, tcfg: Any, given: set[str]) -> float:
    """The recipe's ms per iteration on this machine (kept in ``probe.json``; delete it to measure again)."""
    path = folder / "probe.json"
    if path.exists():
        return float(json.loads(path.read_text())["ms_per_iter"])
    trainer = Trainer(sides["src"], sides["dst"], folder / "probe_model", mcfg, tcfg, given)
    trainer.run(iterations=PROBE_WARMUP)
    windows = []  # the fastest of a few windows: a burst of other work on the machine lands in one, not all
    for _ in range(PROBE_WINDOWS):
        t0 = time.perf_counter()
        trainer.run(iterations=trainer.iteration + PROBE_ITERS)
        windows.append((time.perf_counter() - t0) * 1000 / PROBE_ITERS)
    ms = min(windows)
    doc = {"ms_per_iter": ms, "windows_ms_per_iter": windows, "iterations_per_window": PROBE_ITERS}
    write_atomic(path, json.dumps(doc).encode())
    shutil.rmtree(folder / "probe_model", ignore_errors=True)
    return ms


def run_recipe(
    spec: str,
    checkpoints: list[float],
    sides: dict[str, Path],
    dst_video: Path,
    out: Path,
    want_strip: bool,
    wall: bool = False,
    scoring: bool = True,
    warm: tuple[list[Path], float] | None = None,
) -> list[dict[str, Any]]:
    """Train ``spec`` to each checkpoint, merge, score. ``warm`` (pretraining pool, minutes): start from a model
    pretrained on other people's faces for that long (DFL's pretrain mode), kept apart from the recipe's minutes."""
    name, model_opts, train_opts = parse_recipe(spec)
    mcfg, tcfg, given = with_preset(name, model_opts, train_opts)
    slug = _slug(spec)
    folder = recipe_folder(out, spec, warm[1] if warm else 0.0)
    log_path = folder / "curve.json"
    curve: list[dict[str, Any]] = json.loads(log_path.read_text()) if log_path.exists() else []
    trained = curve[-1]["minutes"] if curve else 0.0
    ms = None if wall else probe(folder, sides, mcfg, tcfg, given)
    if ms is not None:
        print(f"{spec}: {ms:.0f} ms/it on this machine; {60000 / ms:.0f} iterations per minute", flush=True)
        if tcfg.lr_schedule == "budget" and not tcfg.plan_iters:  # one plan, snapshots along it
            tcfg = replace(tcfg, plan_iters=round(max(checkpoints) * 60000 / ms))
            given = given | {"plan_iters"}
    if warm is not None and not (folder / "model").exists():
        if ms is None:
            raise SystemExit("--warm-start counts pretraining in probed iterations: leave out --wall")
        pretrained = pretrain(warm[0], out / f"pretrain_{slug}_{warm[1]:g}min", warm[1], ms, mcfg, tcfg, given)
        start_from_pretrained(pretrained, folder / "model", mcfg)
    if warm is not None:
        given = given | {"pretrain"}  # leaving pretraining: the count restarts, the inters are re-initialised
    for minutes in checkpoints:
        at = folder / f"at_{minutes:g}min"
        point = next((p for p in curve if abs(p["minutes"] - minutes) < 1e-6), None)
        if point is None:  # train to this checkpoint and merge the dst with the model
            trainer = Trainer(sides["src"], sides["dst"], folder / "model", mcfg, tcfg, given)
            t0 = time.perf_counter()
            if ms is None:
                res = trainer.run(minutes=minutes - trained)
            else:
                res = trainer.run(iterations=max(1, round(minutes * 60000 / ms)))
            trained += (time.perf_counter() - t0) / 60
            merge(dst_video, folder / "model", at / "swapped.mp4", MergeConfig(), faceset=sides["dst"])
            point = {"minutes": minutes, "iterations": res.iteration, "wall_minutes": round(trained, 2)}
            point["scored"] = False
            curve.append(point)
            write_atomic(log_path, json.dumps(curve, indent=1).encode())
        if scoring and rescore(point):  # merged (here or on a GPU), not yet scored
            point.update(score(dst_video, sides, at), scored=True)
            write_atomic(log_path, json.dumps(curve, indent=1).encode())
            print(f"{spec} @ {minutes:g} min: {point['iterations']} iterations; " + _line(point), flush=True)
            if want_strip:
                strip(dst_video, at / "swapped.mp4", sides["dst"], at / "strip.png")
    return curve


def _line(point: dict[str, Any]) -> str:
    return ", ".join(f"{title} {fmt(point.get(key), digits)}" for key, title, digits in COLUMNS)


def main() -> int:
    ap = data_parser(__doc__)
    ap.add_argument("--pair", default="p7_to_p6", help="a pair of pairs.json (default: %(default)s, held apart)")
    ap.add_argument("--recipes", default="cpu-quick", help="comma-separated; options after ':' joined by '+'")
    ap.add_argument("--checkpoints", default="10,20,40,60", help="training minutes at which to score")
    ap.add_argument("--strip", action="store_true", help="write a dst | swap frame strip at each checkpoint")
    ap.add_argument("--wall", action="store_true", help="train by wall minutes instead of probed iterations")
    ap.add_argument("--no-score", action="store_true", help="train and merge only (a GPU run; score here later)")
    ap.add_argument(
        "--warm-start",
        type=float,
        default=0.0,
        metavar="MIN",
        help="start every recipe from a model pretrained for MIN minutes on the other people's faces",
    )
    ap.add_argument("--remerge", metavar="OPTS", help="also merge each recipe's last model with these merge options "
                    "and score it (e.g. sharpen=gaussian+sharpen_amount=6)")  # fmt: skip
    ap.add_argument("--perfect", action="store_true", help="also score the dst's own faces sent through each "
                    "recipe's crop and back (what a perfect model of that resolution would give)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=REPO / "bench-output" / "quality_per_hour")
    a = ap.parse_args()
    data = require_data(a.data, "pairs.json")
    pair = require_pair(data, a.pair)
    out = a.out / a.pair
    sides = facesets(data, pair, out)
    checkpoints = sorted(float(m) for m in a.checkpoints.split(","))
    warm = (pretrain_pool(data, pair, out), a.warm_start) if a.warm_start > 0 else None
    figures: dict[str, list[dict[str, Any]]] = {}
    for spec in a.recipes.split(","):
        spec = spec.replace("+", ",")  # options inside a recipe: cpu-quick:lr=1e-4+batch=8
        figures[spec] = run_recipe(
            spec, checkpoints, sides, data / pair["dst"], out, a.strip, a.wall, not a.no_score, warm
        )
        if a.remerge:
            figures[f"{spec} merged {a.remerge}"] = [
                remerge(spec, out, sides, data / pair["dst"], a.remerge, a.warm_start)
            ]
    ceilings = {}
    for spec in (r.replace("+", ",") for r in a.recipes.split(",")):
        mcfg = with_preset(*parse_recipe(spec)[:2], {})[0]
        key = f"{mcfg.face_type} {mcfg.resolution} px"
        if key not in ceilings:
            ceilings[key] = sharpness_ceiling(sides["src"], mcfg.face_type, mcfg.resolution)
            if a.perfect:
                at = out / f"perfect_{mcfg.face_type}_{mcfg.resolution}"
                figures[f"perfect {key} model"] = [perfect_model(data / pair["dst"], sides, mcfg.face_type,
                                                                 mcfg.resolution, at)]  # fmt: skip
    rows = [
        [spec, f"{p['minutes']:g}", p["iterations"], *(fmt(p.get(k), d) for k, _, d in COLUMNS)]
        for spec, curve in figures.items()
        for p in sorted(curve, key=lambda p: p["minutes"])
    ]
    print_table(
        f"quality per CPU-minute on {a.pair} (training minutes{' (wall)' if a.wall else ' at probed speed'})",
        ["recipe", "min", "iters", *(title for _, title, _ in COLUMNS)],
        rows,
        notes=[
            "eye r / mouth r: correlation of dst and swapped eye / mouth aspect ratios over frames (1 = follows)",
            "gaze: error of the FaceMesh iris gaze in degrees; sharp/src: Laplacian sharpness vs the src faces",
            "id->src / id->dst: dlib descriptor distance of the swapped face (< 0.6 = same person)",
            *(
                f"sharp/src of a perfect {k} model (src faces through its crop and back): {v:.2f}"
                for k, v in ceilings.items()
            ),
        ],
    )
    write_json(a.json, {"pair": a.pair, "curves": figures, "sharpness_ceiling": ceilings})
    return 0


if __name__ == "__main__":
    sys.exit(main())
