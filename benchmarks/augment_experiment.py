"""The seed's experiment, redone: does synthetic src data improve the swap, and where? (issue 16)

Arms, on one real pair of ../shared/data/pairs.json, each trained from scratch with the same recipe, iterations and
seeds:

* ``baseline``: the src faceset alone;
* ``render``: plus ``facelab augment render --fill`` renders into the pose and expression bins the src lacks
  against the dst (their own folder, pooled with ``--src``);
* ``gan``: plus ``facelab augment sample --fill-poses --fill-expressions`` faces from a generator given with
  ``--gan`` (skipped, printing "no faces", without one or when it adds none);
* ``both``: renders and GAN faces.

Each run merges the dst and scores it with ``facelab evaluate`` (overall and per bin of the dst face: |yaw| < 15,
15-30, > 30, neutral vs mouth open or smiling). Every finished run's figures are written as a small JSON under
``docs/experiments/augment/<pair>/`` and runs already there are skipped, so the experiment resumes and can span
sessions. The verdict per metric and bin compares each arm with the baseline **paired by seed** (same seed = same
initialisation and sample order): the mean of the per-seed differences with a 95 % Student-t interval (n - 1
degrees of freedom). A paired comparison removes the seed-to-seed noise that the arms share. Why t and not a
bootstrap or a permutation test: with 3 seeds a percentile bootstrap's interval is the range of the three
differences (the 2.5 % quantile of 10,000 resamples is the smallest one, drawn three times with probability 1/27),
so it calls "better" or "worse" whenever the three agree in sign, which pure noise does 1 time in 4; an exact
sign-flip test has 8 arrangements and cannot go below p = 0.25. The t interval (4.30 standard errors at 3 seeds)
needs a consistent shift that is large against the seeds' spread; its price is assuming the differences are
roughly normal, which three seeds cannot check. "better" / "worse" only when the interval excludes 0; otherwise
"no difference" (a null result here means "smaller than this design can see", not "no effect").
The table and the exact command go to ``docs/experiments/augment.md``.

A control run (``--blob-iters 300``, seed 0, the baseline's faces) checks that the scores tell an untrained swap
from a trained one: after 300 iterations ``cpu-quick`` draws a featureless face-coloured blob, which dlib's
distance alone still reads as the src; its figures are printed beside the baseline's mean (``--blob-iters 0``: no
control run).

    .venv/bin/python benchmarks/augment_experiment.py [--pair p2_to_p1] [--arms baseline,render,gan,both]
        [--seeds 3] [--iters 2250] [--blob-iters 300] [--gan G.safetensors] [--fid]
    .venv/bin/python benchmarks/augment_experiment.py --quick   # CI smoke: tiny model, few frames, out of docs/

``--iters 2250`` of ``cpu-quick`` is 30 to 34 minutes on an idle 2-core machine (805-917 ms/it measured; the issue
asks for at least 30 minutes of the default CPU recipe), the same in every arm. A run recorded with fewer
iterations (an earlier, shorter setting) trains on from its checkpoint to ``--iters`` and is merged and scored
again: training resumes exactly (every batch is a function of seed and iteration) and ``cpu-quick``'s schedule does
not depend on the total, so this equals training that long in one go. FID/KID (``--fid``) add about 15 minutes per
run on a CPU (Inception on every face) and are off by default.

Every run records the arithmetic it trained in (``precision``: ``auto`` is bf16 on a CPU with AMX or AVX512-BF16,
fp32 elsewhere), and an arm's run is only trained where it matches the baseline run of its seed (a run trained on
from a checkpoint: its own first part); otherwise it prints why and is left for a machine that matches. bf16 and
fp32 runs from one seed drift apart, so a mixed pair would measure the machine as well as the arm; and an AVX2-only
CPU trains ``cpu-quick`` in fp32 at about 3.4 s/it, four times the bf16 CPUs' time, where an emulated bf16 is slower
still.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as `python benchmarks/augment_experiment.py`: make `benchmarks` importable
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks.common import REPO, data_parser, fmt, print_table, require_data, require_pair  # noqa: E402
from facelab.config import ExtractConfig, MergeConfig, RenderConfig, SampleConfig  # noqa: E402
from facelab.extract.pipeline import extract  # noqa: E402
from facelab.io.atomic import write_atomic  # noqa: E402
from facelab.io.media import iter_frames  # noqa: E402

ARMS = ("baseline", "render", "gan", "both")
# (report key, lower is better?) of the metrics compared; every one is also compared per bin
METRICS: tuple[tuple[str, bool], ...] = (
    ("identity_transfer", False),
    ("id_dist_src", True),
    ("pose_err_l2", True),
    ("expression_err", True),
    ("gaze_err", True),
    ("eye_follow", False),
    ("mouth_follow", False),
    ("sharpness_ratio", False),
    ("kid_dst", True),
    ("fid_dst", True),
    ("kid_src", True),
)
QUICK = {"iters": 3, "seeds": 1, "every": 12, "frames": 12, "blob_iters": 1}
ALPHA = 0.05  # the verdict's two-sided level


def main() -> int:
    ap = data_parser(__doc__)
    ap.add_argument("--pair", default="p2_to_p1", help="a pair of pairs.json whose dst turns and smiles")
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=2250, help="training iterations of every run (cpu-quick)")
    ap.add_argument("--blob-iters", type=int, default=300, help="iterations of the untrained control run (0: none)")
    ap.add_argument("--gan", help="generator for the gan arms (facelab augment train/export)")
    ap.add_argument("--fid", action="store_true", help="also FID/KID against src and dst (slow on a CPU)")
    ap.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"),
                    help="training arithmetic (auto: bf16 where the CPU has it); every arm must match the baseline's")  # fmt: skip
    ap.add_argument("--report-only", action="store_true", help="write the table from the runs recorded; train nothing")
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny model, few frames, results not in docs/")
    ap.add_argument("--out", type=Path, default=REPO / "bench-output" / "augment_experiment")
    a = ap.parse_args()
    data = require_data(a.data, "pairs.json")
    pair = require_pair(data, a.pair)
    arms = [x for x in a.arms.split(",") if x]
    if unknown := set(arms) - set(ARMS):
        print(f"augment_experiment: unknown arm(s) {sorted(unknown)} (choose from {', '.join(ARMS)})", file=sys.stderr)
        return 2
    seeds = QUICK["seeds"] if a.quick else a.seeds
    iters = QUICK["iters"] if a.quick else a.iters
    blob_iters = QUICK["blob_iters"] if a.quick else a.blob_iters
    work = a.out / (f"{a.pair}_quick" if a.quick else a.pair)
    results = (work / "runs") if a.quick else REPO / "docs" / "experiments" / "augment" / a.pair
    command = "benchmarks/augment_experiment.py " + " ".join(x for x in sys.argv[1:] if x != "--report-only")
    doc = None if a.quick else REPO / "docs" / "experiments" / "augment.md"
    if a.report_only:
        return _report_only(results, arms, seeds, iters, blob_iters, doc, a.pair, command, _sources(work))
    precision = _precision_here(a.precision)
    print(f"training arithmetic here: {precision}", flush=True)
    sides = _facesets(data, pair, work, QUICK["every"] if a.quick else 1)
    dst_video = _dst_input(data / pair["dst"], work, QUICK["frames"] if a.quick else None)
    extra = {"render": _renders(sides, work), "gan": _gan_faces(a.gan, sides, work)}
    runs: dict[str, list[dict[str, Any]]] = {}
    folders = {arm: _arm_folders(arm, sides["src"], extra) for arm in arms}
    for arm in arms:
        if folders[arm] is None:
            print(f"{arm}: no faces (no generator given, or it added none); arm skipped", flush=True)
    blob = None  # the untrained control first: it is cheap, and every table below can show it
    if blob_iters > 0:
        path = results / "blob_seed0.json"
        blob = json.loads(path.read_text()) if path.exists() else None
        if _stale(blob, blob_iters):
            blob = _run("blob", 0, [sides["src"]], sides, dst_video, work, blob_iters, a.quick, a.fid, blob,
                        a.precision)  # fmt: skip
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(blob, indent=1).encode())

    def tables() -> str:
        return _table(runs) + (_blob_table(blob, runs.get("baseline", [])) if blob is not None else "")

    for seed in range(seeds):  # seed by seed, so that paired results accrue together
        for arm in (arm for arm in arms if folders[arm] is not None):
            path = results / f"{arm}_seed{seed}.json"
            run = json.loads(path.read_text()) if path.exists() else None
            if _stale(run, iters):  # a shorter run trains on from its checkpoint; an older scoring is redone
                if clash := _precision_clash(arm, seed, precision, run, results):
                    print(clash, flush=True)
                    continue
                run = _run(arm, seed, folders[arm], sides, dst_video, work, iters, a.quick, a.fid, run, a.precision)
                path.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(path, json.dumps(run, indent=1).encode())
            runs.setdefault(arm, []).append(run)
            if doc is not None:  # after every run: a stopped experiment still documents what it has
                _write_doc(doc, a.pair, iters, seeds, tables(), command, runs, _sources(work))
    if doc is not None:
        _write_doc(doc, a.pair, iters, seeds, tables(), command, runs, _sources(work))
    print(tables())
    return 0


def _report_only(
    results: Path,
    arms: list[str],
    seeds: int,
    iters: int,
    blob_iters: int,
    doc: Path | None,
    pair: str,
    command: str,
    sources: dict[str, str],
) -> int:
    """The table (and doc) from the runs already recorded and current; nothing is trained or scored."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for seed in range(seeds):
        for arm in arms:
            path = results / f"{arm}_seed{seed}.json"
            run = json.loads(path.read_text()) if path.exists() else None
            if not _stale(run, iters):
                runs.setdefault(arm, []).append(run)
    path = results / "blob_seed0.json"
    blob = json.loads(path.read_text()) if blob_iters > 0 and path.exists() else None
    blob = None if _stale(blob, blob_iters) else blob
    text = _table(runs) + (_blob_table(blob, runs.get("baseline", [])) if blob is not None else "")
    if doc is not None:
        _write_doc(doc, pair, iters, seeds, text, command, runs, sources)
    print(text)
    return 0


def _stale(run: dict[str, Any] | None, iters: int) -> bool:
    """Whether a recorded run must be (re)done: missing, shorter than ``iters``, or scored by another version of
    ``facelab evaluate``'s definitions (the model is kept; only merging and scoring run again)."""
    from facelab.evaluate.metrics import METRICS_VERSION

    return run is None or run["iterations"] < iters or run.get("metrics_version") != METRICS_VERSION


def _precision_here(precision: str) -> str:
    """The arithmetic training runs in on this machine for ``precision`` (auto: bf16 only where the CPU has it)."""
    import torch

    from facelab.models.precision import autocast_dtype

    return "bf16" if autocast_dtype(precision, torch.device("cpu")) == torch.bfloat16 else "fp32"


def _precision_clash(arm: str, seed: int, here: str, before: dict[str, Any] | None, results: Path) -> str | None:
    """Why ``arm``'s run ``seed`` must not be trained here, or None: the arithmetic differs from its own earlier
    part (a resumed run) or from the baseline's run of that seed, which it is compared with. bf16 and fp32 runs from
    one seed drift apart, so such a pair would measure the machine as well as the arm."""
    base_path = results / f"baseline_seed{seed}.json"
    base = json.loads(base_path.read_text()) if arm not in ("baseline", "blob") and base_path.exists() else None
    for what, run in (("its first part", before), (f"baseline seed {seed}", base)):
        if run is not None and run.get("precision", here) != here:
            return (
                f"{arm} seed {seed}: not trained here: {what} trained in {run['precision']}, this machine trains in "
                f"{here}; run it where auto gives {run['precision']} (bf16: a CPU with AMX or AVX512-BF16, or a "
                f"GPU) or with --precision {run['precision']} (emulated bf16 is slow: over 15 s/it on an AVX2 CPU)"
            )
    return None


def _facesets(data: Path, pair: dict[str, Any], work: Path, every: int) -> dict[str, Path]:
    sides = {}
    for side, rel in (("src", pair["src"][0]), ("dst", pair["dst"])):
        sides[side] = work / f"faceset_{side}"
        if not (sides[side] / "extract-summary.json").exists():
            extract(data / rel, sides[side], ExtractConfig(face_type="whole_face", size=256, every=every))
    return sides


def _dst_input(video: Path, work: Path, frames: int | None) -> Path:
    """The dst as merged and scored: the video, or (quick) its first ``frames`` frames as a folder."""
    if frames is None:
        return video
    folder = work / "dst_frames"
    if not folder.is_dir():
        import cv2

        folder.mkdir(parents=True)
        for i, fr in enumerate(iter_frames(video)):
            if i >= frames:
                break
            cv2.imwrite(str(folder / f"{i:06d}.png"), cv2.cvtColor(fr.image, cv2.COLOR_RGB2BGR))
    return folder


def _renders(sides: dict[str, Path], work: Path) -> Path | None:
    from facelab.augment.render.stage import render_faces

    out = work / "renders"
    if not (out / ".done").exists():
        shutil.rmtree(out, ignore_errors=True)
        rep = render_faces(sides["src"], out, [], RenderConfig(), dst=sides["dst"], fill=True)
        print(rep.summary(), flush=True)
        if out.is_dir():
            (out / ".done").write_text(f"{rep.kept} renders (augment render --fill)\n")
    return out if out.is_dir() and any(out.glob("render_*.jpg")) else None


def _gan_faces(gan: str | None, sides: dict[str, Path], work: Path) -> Path | None:
    """GAN faces sampled into a copy of the src faceset's folder layout (only the synthetic ones kept)."""
    if gan is None:
        return None
    from facelab.augment.stage import sample_faces

    out = work / "gan_faces"
    if not (out / ".done").exists():
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(sides["src"], out)
        cfg = SampleConfig(fill_poses=True, fill_expressions=True)
        rep = sample_faces(gan, out, 200, cfg, dst=sides["dst"])
        print(rep.summary(), flush=True)
        for f in out.iterdir():  # keep only what was generated: the real faces are the src arm's
            if f.is_file() and not f.name.startswith("synthetic_"):
                f.unlink()
        (out / ".done").write_text(
            f"{rep.kept} faces of {rep.generated} drawn from {gan} ({cfg.snapshot} snapshot, psi {cfg.truncation}, "
            f"--fill-poses --fill-expressions; {rep.wrong_identity} not the source person, {rep.not_confirmed} "
            f"unconfirmed, {rep.not_needed} not needed)\n"
        )
    return out if any(out.glob("synthetic_*")) else None


def _arm_folders(arm: str, src: Path, extra: dict[str, Path | None]) -> list[Path] | None:
    """The src folders an arm trains on, or None when one of its synthetic sources has no faces."""
    want = {"baseline": [], "render": ["render"], "gan": ["gan"], "both": ["render", "gan"]}[arm]
    folders = [extra[k] for k in want]
    if any(f is None for f in folders):
        return None
    return [src, *[f for f in folders if f is not None]]


def _run(
    arm: str,
    seed: int,
    folders: list[Path],
    sides: dict[str, Path],
    dst: Path,
    work: Path,
    iters: int,
    quick: bool,
    fid: bool,
    before: dict[str, Any] | None,
    precision: str = "auto",
) -> dict[str, Any]:
    """Train (or train on, from ``before``'s checkpoint), merge the dst and evaluate; the run's figures. A
    training stopped by Ctrl+C ends the experiment (its checkpoint is kept and the next start resumes it)."""
    from facelab.evaluate.report import evaluate
    from facelab.merge.pipeline import merge
    from facelab.train.loop import Trainer
    from facelab.train.presets import with_preset

    tiny = {"resolution": 64, "ae_dims": 32, "e_dims": 16, "d_dims": 16, "d_mask_dims": 8} if quick else {}
    mcfg, tcfg, given = with_preset("cpu-quick", tiny, {"seed": seed, "preview_every": 0, "precision": precision})
    folder = work / f"{arm}_seed{seed}"
    t0 = time.perf_counter()
    res = Trainer(folders, sides["dst"], folder / "model", mcfg, tcfg, given).run(iterations=iters)
    if res.stopped == "interrupted":
        raise SystemExit(f"{arm} seed {seed}: stopped at iteration {res.iteration}; run again to resume")
    minutes = (time.perf_counter() - t0) / 60 + (before["train_minutes"] if before else 0.0)
    swapped = folder / ("swapped" if dst.is_dir() else "swapped.mp4")
    merge(dst, folder / "model", swapped, MergeConfig(), faceset=None if dst.is_dir() else sides["dst"])
    report = evaluate(sides["src"], dst, swapped, folder / "report", with_fid=fid).report
    values = {k: v.get("value") for k, v in report["metrics"].items()}
    bins = {b: {k: v.get("value") for k, v in m.items()} for b, m in report.get("bins", {}).items()}
    print(f"{arm} seed {seed}: {res.iteration} iterations in {minutes:.1f} min", flush=True)
    return {
        "arm": arm,
        "seed": seed,
        "iterations": res.iteration,
        "train_minutes": round(minutes, 2),
        "recipe": "cpu-quick" + (" (tiny)" if quick else ""),
        "precision": _precision_here(precision),
        "src_folders": [str(f) for f in folders],
        "frames": report["frames"]["evaluated"],
        "metrics_version": report["version"],
        "metrics": values,
        "bins": bins,
    }


def verdict(base: list[float], arm: list[float], lower_better: bool) -> tuple[float, str]:
    """Mean paired difference (arm - baseline, seeds aligned) and better / worse / no difference by a 95 % t
    interval of that mean (Student's t with n - 1 degrees of freedom)."""
    from scipy.stats import t as student_t

    d = np.array(arm, np.float64) - np.array(base, np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float("nan"), "n/a"
    if d.size < 3:  # two paired seeds agree in sign half the time by chance alone; one has no spread at all
        return float(d.mean()), f"{d.size} seed{'s' if d.size > 1 else ''}: no verdict"
    half = student_t.ppf(1 - ALPHA / 2, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
    lo, hi = d.mean() - half, d.mean() + half
    if lo <= 0 <= hi:
        return float(d.mean()), "no difference"
    improved = (hi < 0) if lower_better else (lo > 0)
    return float(d.mean()), "better" if improved else "worse"


def _values(runs: list[dict[str, Any]], key: str, where: str) -> list[float]:
    return list(_by_seed(runs, key, where).values())


def _by_seed(runs: list[dict[str, Any]], key: str, where: str) -> dict[int, float]:
    """seed -> the metric's value (NaN where missing), in seed order."""
    out = {}
    for r in sorted(runs, key=lambda r: r["seed"]):
        src = r["metrics"] if where == "all" else r["bins"].get(where, {})
        v = src.get(key)
        out[r["seed"]] = float(v) if v is not None else float("nan")
    return out


def _paired(base: dict[int, float], arm: dict[int, float]) -> tuple[list[float], list[float]]:
    """The two arms' values on the seeds both have run: only those pairs share their seed's noise."""
    seeds = sorted(set(base) & set(arm))
    return [base[k] for k in seeds], [arm[k] for k in seeds]


def _table(runs: dict[str, list[dict[str, Any]]]) -> str:
    import io
    from contextlib import redirect_stdout

    wheres = ["all", *sorted({b for rs in runs.values() for r in rs for b in r["bins"]})]
    rows, empty = [], []
    for where in wheres:
        if where != "all" and not any(
            np.isfinite(_values(runs.get("baseline", []), k, where)).any() for k, _ in METRICS
        ):
            empty.append(where)
        for key, lower in METRICS:
            base = _values(runs.get("baseline", []), key, where)
            if not np.isfinite(base).any():
                continue
            row = [where, key]
            for arm in ARMS:
                if arm not in runs:
                    row.append("-")
                    continue
                v = np.array(_values(runs[arm], key, where))
                ok = v[np.isfinite(v)]
                cell = f"{fmt(ok.mean(), 3)} ± {fmt(ok.std(ddof=1), 3)}" if ok.size > 1 else fmt(ok.mean(), 3)
                if arm != "baseline" and "baseline" in runs:
                    pb, pa = _paired(_by_seed(runs["baseline"], key, where), _by_seed(runs[arm], key, where))
                    diff, word = verdict(pb, pa, lower)
                    cell += f" ({diff:+.3f}, {word})"
                row.append(cell if ok.size else "n/a")
            rows.append(row)
    buf = io.StringIO()
    with redirect_stdout(buf):
        print_table(
            "mean ± sd over seeds; (paired difference vs baseline, verdict)",
            ["bin", "metric", *ARMS],
            rows,
            left=2,
            notes=[
                "verdict: 95 % paired t interval of the mean per-seed difference (t with seeds - 1 degrees of "
                "freedom: 4.30 x its standard error at 3 seeds); 'no difference' when it contains 0",
                "lower is better for distances, errors, FID/KID; higher for identity scores, follow r, sharpness",
                *([f"no values (too few dst frames in the bin): {', '.join(empty)}"] if empty else []),
            ],
        )
    return buf.getvalue()


def _blob_table(blob: dict[str, Any], baseline: list[dict[str, Any]]) -> str:
    """The untrained control beside the trained baseline (mean over its seeds), over all frames."""
    import io
    from contextlib import redirect_stdout

    rows = []
    for key, lower in METRICS:
        b, v = blob["metrics"].get(key), _values(baseline, key, "all")
        trained = float(np.nanmean(v)) if np.isfinite(v).any() else None
        if b is None and trained is None:
            continue
        gap = None if b is None or trained is None else trained - b
        rows.append(
            [key, fmt(b, 3), fmt(trained, 3), "-" if gap is None else f"{gap:+.3f}", "lower" if lower else "higher"]
        )
    buf = io.StringIO()
    with redirect_stdout(buf):
        print_table(
            f"control: {blob['iterations']}-iteration blob (seed 0) vs the trained baseline (mean over seeds)",
            ["metric", "blob", "baseline", "baseline - blob", "better is"],
            rows,
        )
    return buf.getvalue()


def _sources(work: Path) -> dict[str, str]:
    """What each synthetic source added, as its ``.done`` file recorded it (none not made yet)."""
    notes = {}
    for kind, folder in (("render", "renders"), ("gan", "gan_faces")):
        done = work / folder / ".done"
        if done.exists():
            notes[kind] = done.read_text().strip()
    return notes


def _write_doc(
    path: Path,
    pair: str,
    iters: int,
    seeds: int,
    table: str,
    command: str,
    runs: dict[str, list[dict[str, Any]]],
    sources: dict[str, str],
) -> None:
    done = ", ".join(f"{arm}: {len(rs)} seed(s)" for arm, rs in runs.items())
    added = "".join(f"\n- {kind}: {note}" for kind, note in sources.items())
    arithmetic = " and ".join(sorted({r.get("precision", "unrecorded") for rs in runs.values() for r in rs}))
    minutes = [r["train_minutes"] for rs in runs.values() for r in rs] or [float("nan")]
    text = f"""# Does synthetic src data improve the swap? (issue 16)

Pair `{pair}`; every run trains `cpu-quick` for {iters} iterations ({fmt(min(minutes), 1)} to {fmt(max(minutes), 1)}
min of wall time per run on 2 cores, depending on what else ran; the iterations, not the minutes, are
the budget), in {arithmetic}, {seeds} seeds per arm, the same seeds in every arm. Done so far: {done}.
Per-run figures: `docs/experiments/augment/{pair}/`.
{"Synthetic src faces added to the real ones (the `both` arm takes both):" + added if added else ""}

Command:

    .venv/bin/python {command}

How to read it: see the docstring of `benchmarks/augment_experiment.py` (paired t interval over seeds, and why not a bootstrap).

```
{table.strip()}
```
"""
    write_atomic(path, text.encode())


if __name__ == "__main__":
    sys.exit(main())
