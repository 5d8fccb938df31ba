"""Issue 15: a StyleGAN2 generator trained on one real person's faceset for a time budget, scored at every checkpoint.

Trains as ``facelab augment train`` does (default ``--cfg by-size``: the small-data preset for a faceset under
5,000 faces; every checkpoint probed and the best snapshot kept, ``facelab.augment.select``) on the src faceset of
``--pair`` (extracted from ../shared/data once, into ``--work``) or on ``--faceset``. Every ``--every`` minutes it
draws ``--samples`` images from the snapshot ``augment sample`` would use (the best probed one; seeds 0..N-1, psi
``--truncation``, sampling's default; the probes draw other seeds) and prints one row:

- kimg: thousand real images D has seen;
- FID(samples, src faces): Inception pool features of the samples against the faceset's real faces at the GAN's
  resolution (few images: biased upwards, compare rows of one run only; ``--no-fid`` skips it);
- detection pass: the extraction stage finds a face *and* dlib's CNN detector (``augment sample``'s confirm
  detector) finds one there too (box IoU >= 0.3);
- identity pass: a face is found and its dlib descriptor is < 0.6 from the src centroid (the mean descriptor
  ``augment sample`` filters with);
- both: detection and identity pass together, which is what ``augment sample`` keeps (the issue's figure);
- diversity: mean pairwise distance of the found faces' dlib descriptors, and of the identity passes' alone (the
  issue's collapse test: at least half the real faces' value; 0 = one face for every latent; the src faces' own
  value is printed once for reference), and the pixel std across samples (README's "image std across
  latents"; a collapsed generator drives both down).

Then the probe curve: every checkpoint's share of ``--probe-samples`` samples of the latest G_ema passing sampling's
checks (the training run's own curve, which the best snapshot is chosen from). ``--final-samples`` scores the final
snapshot once more with that many samples. Writes ``grid_<kimg>.png`` (the first 64 samples) per checkpoint and
``curves.png`` (pass rates, FID and diversity against kimg) into ``--out``, and every figure to ``--json``. The real faces scored at the generator's resolution
(128 of them) give the pass rates samples can hope for.
Resumes: a second call with the same ``--out`` continues the generator there. The budget counts this call's
training time; scoring (a few seconds per sample on a CPU with FID) comes on top.
Without the test data (and no ``--faceset``) it exits with status 2 and says why.

Usage: .venv/bin/python benchmarks/augment_gan.py [--pair p2_to_p1 | --faceset DIR] [--res 128] [--minutes 60]
       [--every 10] [--samples 256] [--final-samples 1000] [--probe-samples 64] [--cfg by-size]
       [--precision auto] [--batch N] [--out DIR] [--no-fid] [--json OUT]
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if __package__ in (None, ""):  # run as `python benchmarks/augment_gan.py`: make `benchmarks` importable
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks.common import REPO, data_parser, fmt, print_table, require_data, require_pair, write_json  # noqa: E402
from facelab.config import GanConfig, SampleConfig  # noqa: E402

if TYPE_CHECKING:
    from facelab.augment.select import Probe

GRID = 8  # the sample grid is GRID x GRID
CEILING_FACES = 128  # real faces scored at the generator's resolution: the pass rates samples can hope for


def main() -> int:
    p = data_parser(__doc__)
    p.add_argument("--pair", default="p2_to_p1", help="pairs.json pair whose src person is learnt")
    p.add_argument("--faceset", type=Path, help="train on this faceset instead (its real faces)")
    p.add_argument("--work", type=Path, help="where the pair's src faceset is extracted (default: under --out)")
    p.add_argument("--every-frame", type=int, default=1, help="extract every Nth frame of the src video")
    p.add_argument("--out", type=Path, help="generator, grids (default: bench-output/augment_gan/<pair or faceset>)")
    p.add_argument("--res", type=int, default=128)
    p.add_argument("--cfg", default="by-size", help="generator preset (by-size, small, auto, cpu, ...)")
    p.add_argument("--precision", help="fp32 | bf16 | auto (default: the preset's; a resumed run keeps its own)")
    p.add_argument("--batch", type=int, default=0, help="0 = the preset's")
    p.add_argument("--channel-base", type=int, default=0, help="0 = the preset's (the cpu preset's widths: 2048)")
    p.add_argument("--channel-max", type=int, default=0, help="0 = the preset's (the cpu preset's widths: 128)")
    p.add_argument("--minutes", type=float, default=60.0, help="training budget of this call")
    p.add_argument("--kimg", type=float, help="stop at this many kimg (total) instead of / before the budget")
    p.add_argument("--every", type=float, default=10.0, help="minutes of training between checkpoints")
    p.add_argument("--samples", type=int, default=256, help="generated images scored per checkpoint")
    p.add_argument("--final-samples", type=int, default=0, help="score the final snapshot with this many samples")
    p.add_argument("--probe-samples", type=int, help="samples probed per checkpoint (default: the config's; 0 = off)")
    p.add_argument("--truncation", type=float, default=SampleConfig.truncation, help="psi of scored and probed samples")
    p.add_argument("--fid-reals", type=int, default=1000, help="at most this many real faces for FID (spread out)")
    p.add_argument("--no-fid", action="store_true", help="skip FID (Inception on a CPU takes ~0.1 s per image)")
    a = p.parse_args()

    if a.faceset is not None:
        faceset = a.faceset
        name = faceset.resolve().name
    else:
        data = require_data(a.data, "pairs.json")
        pair = require_pair(data, a.pair)
        require_data(data, pair["src"][0])
        name = a.pair
    out = a.out or REPO / "bench-output" / "augment_gan" / name
    out.mkdir(parents=True, exist_ok=True)
    if a.faceset is None:
        faceset = _extract_src(data / pair["src"][0], a.work or out / "faceset_src", a.every_frame)

    from facelab.augment.select import SnapshotSelector
    from facelab.augment.trainer import GanTrainer, generate_fn, load_generator

    probes = GanConfig.probe_samples if a.probe_samples is None else a.probe_samples
    cfg = GanConfig(resolution=a.res, cfg=a.cfg, precision=a.precision or "auto", batch=a.batch, preview_every=500,
                    channel_base=a.channel_base, channel_max=a.channel_max, probe_samples=probes)  # fmt: skip
    # a resumed run keeps its settings (precision and probes too unless given)
    given = {k for k, v in (("precision", a.precision), ("probe_samples", a.probe_samples)) if v is not None}
    trainer = GanTrainer(faceset, out / "gan", cfg, given=given)
    g_params = sum(p.numel() for p in trainer.G.parameters())
    print(f"{trainer.settings()}; G {g_params / 1e6:.2f} M parameters; "
          f"starting at {trainer.kimg:.2f} kimg", flush=True)  # fmt: skip
    scorer = Scorer(faceset, trainer.reals, fid=not a.no_fid, fid_reals=a.fid_reals)
    selector = None
    if trainer.cfg.probe_samples > 0:  # as 'augment train' does, with the same checks as the scores
        selector = SnapshotSelector(faceset, out / "gan", trainer.cfg.probe_samples, a.truncation, scorer.judge)
        trainer.on_saved = selector
    print(f"src faces: {scorer.real_note}", flush=True)
    ceiling = scorer.score(_spread(trainer.reals, CEILING_FACES), with_fid=False)
    ceiling_note = (
        f"{len(trainer.reals)} real faces at {trainer.cfg.resolution} px, as the generator sees them "
        f"({CEILING_FACES} spread out): detection pass {ceiling['detect_pass']:.3f}, identity pass "
        f"{ceiling['identity_pass']:.3f}, diversity {fmt(ceiling['diversity'], 3)} (the most samples can reach)"
    )
    print(ceiling_note, flush=True)
    rows: list[dict[str, Any]] = []
    trained = 0.0  # seconds of training in this call (scoring is not counted against the budget)

    def checkpoint(samples: int) -> None:
        g, _, _ = load_generator(out / "gan")  # what 'augment sample' would draw from: the best snapshot
        best = selector.best if selector is not None else None
        snap = round(best.kimg if best is not None else trainer.kimg, 3)
        row = {"kimg": round(trainer.kimg, 3), "iteration": trainer.iteration, "train_minutes": round(trained / 60, 2),
               "snapshot_kimg": snap}  # fmt: skip
        last = rows[-1] if rows else None
        if last is not None and last["snapshot_kimg"] == snap and last["n"] == samples:
            rows.append({**last, **row, "score_seconds": 0.0})  # the same snapshot: same samples, same figures
        else:
            gen = generate_fn(g)
            t0 = time.perf_counter()
            images = np.concatenate([gen(list(range(s, min(s + 32, samples))), a.truncation)
                                     for s in range(0, samples, 32)])  # fmt: skip
            row.update(scorer.score(images))
            row["score_seconds"] = round(time.perf_counter() - t0, 1)
            rows.append(row)
            _write_grid(out / f"grid_{trainer.kimg:08.2f}kimg.png", images[: GRID * GRID])
        row = rows[-1]
        if len(rows) >= 2:
            plot_curves(
                out / "curves.png",
                rows,
                ceiling,
                scorer.real_div,
                title=f"{name}: {trainer.settings()}",
                probes=selector.history if selector is not None else (),
            )
        print(
            f"kimg {row['kimg']:.2f} (snapshot {row['snapshot_kimg']:.2f}): FID {fmt(row['fid'], 1)}, detection pass "
            f"{row['detect_pass']:.3f}, identity pass {row['identity_pass']:.3f} (median distance "
            f"{fmt(row.get('identity_median'), 3)}), both {row['sample_pass']:.3f}, "
            f"diversity {fmt(row['diversity'], 3)} (of the identity passes "
            f"{fmt(row['diversity_pass'], 3)}; src {fmt(scorer.real_div, 3)}), "
            f"pixel std {row['pixel_std']:.3f}; faces found {row['found']}/{row['n']} ({row['score_seconds']} s)",
            flush=True,
        )

    if trainer.iteration > 0 or a.minutes <= 0:
        checkpoint(a.samples)  # where a resumed run stands
    target = math.ceil(a.kimg * 1000 / trainer.cfg.batch) if a.kimg is not None else None
    while True:
        left = a.minutes - trained / 60
        if left <= 0.01 or (target is not None and trainer.iteration >= target):
            break
        res = trainer.run(target, minutes=min(a.every, left))
        trained += res.seconds  # probes included, as in 'augment train --minutes'
        checkpoint(a.samples)
        if res.stopped == "interrupted":
            break
    if a.final_samples > 0:
        checkpoint(a.final_samples)
    history = selector.history if selector is not None else []
    scorer.close()

    print_table(
        f"{name}: {trainer.cfg.cfg} generator, {trainer.cfg.resolution} px, {len(trainer.reals)} real faces",
        [
            "kimg",
            "min",
            "snapshot",
            "n",
            "FID",
            "detect",
            "identity",
            "both",
            "diversity",
            "div. passing",
            "px std",
            "found",
        ],  # fmt: skip
        [
            [
                f"{r['kimg']:.2f}",
                f"{r['train_minutes']:.1f}",
                f"{r['snapshot_kimg']:.2f}",
                str(r["n"]),
                fmt(r["fid"], 1),
                f"{r['detect_pass']:.3f}",
                f"{r['identity_pass']:.3f}",
                f"{r['sample_pass']:.3f}",
                fmt(r["diversity"], 3),
                fmt(r["diversity_pass"], 3),
                f"{r['pixel_std']:.3f}",
                f"{r['found']}/{r['n']}",
            ]
            for r in rows
        ],  # fmt: skip
        notes=[
            f"src faces: {scorer.real_note}",
            ceiling_note,
            f"snapshot = the kimg of the snapshot 'augment sample' uses (best probed); samples at psi {a.truncation:g}",
            "detect = found by the extraction stage and confirmed by dlib's CNN detector; identity = found and dlib "
            "distance < 0.6 to the src centroid; both = detect and identity (what sampling keeps); diversity = mean pairwise dlib-descriptor distance of found faces "
            "(div. passing: of the identity passes; no collapse = at least half the real faces')",
            f"FID: {a.samples} samples vs {scorer.n_fid_reals} src faces at {trainer.cfg.resolution} px (biased "
            "upwards at these sizes: compare rows, not papers)"
            if scorer.n_fid_reals
            else "FID: off (--no-fid)",
        ],
    )
    if history:
        print_table(
            f"probes: latest G_ema at every checkpoint, {history[0].n} samples (seeds from 1,000,000), psi "
            f"{a.truncation:g}",
            ["kimg", "pass rate", "found", "median identity distance", "seconds", "best"],
            [
                [
                    f"{h.kimg:.2f}",
                    f"{h.rate:.3f}",
                    f"{h.found}/{h.n}",
                    fmt(h.median_distance, 3),
                    f"{h.seconds:.0f}",
                    "*" if h.best else "",
                ]
                for h in history
            ],  # fmt: skip
        )
    write_json(a.json, {"faceset": str(faceset), "config": asdict(trainer.cfg), "real": scorer.summary(),
                        "real_at_resolution": ceiling, "checkpoints": rows,
                        "probes": [asdict(h) for h in history]})  # fmt: skip
    return 0


def plot_curves(
    path: Path,
    rows: list[dict[str, Any]],
    ceiling: dict[str, Any],
    real_div: float,
    title: str,
    probes: Sequence[Probe] = (),
) -> None:
    """PNG of the checkpoint rows against kimg: detection, identity and joint pass rates of the best snapshot and the
    probes' pass rates of the latest G_ema (left, the real faces' rates at the generator's resolution dotted), FID (middle), diversity of the found faces and of the identity passes beside the
    real faces' (right)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from facelab.io.atomic import write_atomic

    kimg = [r["kimg"] for r in rows]
    fig = Figure(figsize=(13, 4), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)  # headless, no pyplot state
    ax1, ax2, ax3 = fig.subplots(1, 3)
    for key, color, label in (
        ("detect_pass", "tab:blue", "detection"),
        ("identity_pass", "tab:green", "identity"),
        ("sample_pass", "black", "both"),
    ):
        ax1.plot(kimg, [r[key] for r in rows], "o-", color=color, label=f"best snapshot: {label}")
        ax1.axhline(ceiling[key], color=color, ls=":", label=f"real faces: {label}")
    if probes:
        ax1.plot([p.kimg for p in probes], [p.rate for p in probes], ".-", color="tab:orange", alpha=0.7,
                 label="probes of the latest G_ema: both")  # fmt: skip
    ax1.set(xlabel="kimg", ylabel="pass rate", ylim=(-0.02, 1.02), title="pass rates")
    ax1.legend(fontsize=7)
    fids = [(k, r["fid"]) for k, r in zip(kimg, rows) if r["fid"] is not None]
    ax2.plot([k for k, _ in fids], [f for _, f in fids], "o-", color="tab:red")
    ax2.set(xlabel="kimg", ylabel="FID (samples vs src faces)", title="FID (lower is better)")
    for key, color, label in (
        ("diversity", "tab:purple", "found samples"),
        ("diversity_pass", "tab:olive", "identity passes"),
    ):
        divs = [(k, r.get(key)) for k, r in zip(kimg, rows) if r.get(key) is not None]
        ax3.plot([k for k, _ in divs], [d for _, d in divs], "o-", color=color, label=label)
    ax3.axhline(real_div, color="tab:purple", ls=":", label="real faces")
    ax3.axhline(real_div / 2, color="grey", ls="--", label="half the real faces' (collapse line)")
    ax3.set(xlabel="kimg", ylabel="mean pairwise dlib distance", title="diversity", ylim=(0, None))
    ax3.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_atomic(path, buf.getvalue())


def _extract_src(video: Path, folder: Path, every: int) -> Path:
    from facelab.config import ExtractConfig
    from facelab.extract.pipeline import extract

    if not (folder / "extract-summary.json").exists():
        print(f"extracting {video} -> {folder}", flush=True)
        extract(video, folder, ExtractConfig(face_type="whole_face", size=256, every=every))
    return folder


class Scorer:
    """What each checkpoint's samples are measured with: sampling's own checks (a
    :class:`~facelab.augment.sample.Judge` on the faceset: FaceFinder, dlib's descriptor against the src centroid,
    the second detector), each rate counted on its own, and (optionally) Inception features of the real faces."""

    def __init__(self, faceset: Path, reals: np.ndarray, fid: bool, fid_reals: int) -> None:
        from facelab.augment.sample import Judge
        from facelab.evaluate.metrics import mean_pairwise_distance
        from facelab.faceset.index import load_metas
        from facelab.faceset.store import read_face

        cfg = SampleConfig()
        self.judge = Judge(faceset, cfg.min_identity, confirm=cfg.confirm_detector)
        real = [path for path, m in load_metas(faceset) if not m.synthetic]
        pick = np.unique(np.linspace(0, len(real) - 1, min(len(real), 128)).round().astype(int))
        descs = np.array(
            [
                self.judge.describer.describe(img, meta.landmarks)
                for img, meta in map(read_face, (real[i] for i in pick))
            ]
        )
        self.real_div = mean_pairwise_distance(descs)
        self.real_identity = float((np.linalg.norm(descs - self.judge.reference, axis=1) < cfg.min_identity).mean())
        self.real_pixel_std = _pixel_std(_spread(reals, 256))
        self.real_note = (
            f"{len(real)} real; diversity {self.real_div:.3f}, identity pass {self.real_identity:.3f} "
            f"({len(pick)} faces), pixel std {self.real_pixel_std:.3f}"
        )
        self.model = self.real_features = None
        self.n_fid_reals = 0
        if fid:
            from facelab.evaluate.inception import fid_features, load_fid_inception

            self.model = load_fid_inception()
            fid_set = _spread(reals, fid_reals)
            self.real_features = fid_features(self.model, list(fid_set))
            self.n_fid_reals = len(fid_set)

    def summary(self) -> dict[str, Any]:
        return {"diversity": self.real_div, "identity_pass": self.real_identity, "pixel_std": self.real_pixel_std,
                "fid_reals": self.n_fid_reals}  # fmt: skip

    def score(self, images: np.ndarray, with_fid: bool = True) -> dict[str, Any]:
        """Rates over ``images``: detection (both detectors), identity (first detector's face within
        ``min_identity``, confirmed or not), and both together, which is what ``augment sample`` keeps."""
        from facelab.evaluate.frechet import fid_from_features
        from facelab.evaluate.metrics import mean_pairwise_distance

        found = confirmed = same = both = 0
        descs, passing, dists = [], [], []
        for seed, img in enumerate(images):
            c = self.judge.examine(img, seed, "benchmark", 1.0)
            if c is None:
                continue
            found += 1
            near = c.distance < self.judge.min_identity
            same += near
            dists.append(c.distance)
            descs.append(c.descriptor)
            if near:
                passing.append(c.descriptor)
            if self.judge.confirms(img, c):
                confirmed += 1
                both += near
        n = len(images)
        fid = None
        if with_fid and self.model is not None:
            from facelab.evaluate.inception import fid_features

            fid = fid_from_features(fid_features(self.model, list(images)), self.real_features).fid
        return {
            "n": n,
            "found": found,
            "detect_pass": confirmed / n,
            "identity_pass": same / n,
            "identity_median": float(np.median(dists)) if dists else None,
            "sample_pass": both / n,
            "diversity": mean_pairwise_distance(np.array(descs)) if len(descs) >= 2 else None,
            "diversity_pass": mean_pairwise_distance(np.array(passing)) if len(passing) >= 2 else None,
            "pixel_std": _pixel_std(images),
            "fid": fid,
        }

    def close(self) -> None:
        self.judge.close()


def _spread(images: np.ndarray, n: int) -> np.ndarray:
    """At most ``n`` of ``images``, evenly spaced (a video's faces: neighbours are near copies)."""
    return images[np.unique(np.linspace(0, len(images) - 1, min(len(images), n)).round().astype(int))]


def _pixel_std(images: np.ndarray) -> float:
    """Std across images of each pixel (0-1 units), averaged over pixels: 0 when every image is the same."""
    return float((images.astype(np.float32) / 255).std(axis=0).mean())


def _write_grid(path: Path, images: np.ndarray) -> None:
    from facelab.io.atomic import write_atomic

    n, h, w, _ = images.shape
    cols = min(GRID, n)
    rows = math.ceil(n / cols)
    grid = np.full((rows * h, cols * w, 3), 255, np.uint8)
    for i, img in enumerate(images):
        grid[(i // cols) * h : (i // cols + 1) * h, (i % cols) * w : (i % cols + 1) * w] = img
    ok, png = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    if ok:
        write_atomic(path, png.tobytes())


if __name__ == "__main__":
    sys.exit(main())
