"""Snapshot selection in ``augment train``: every checkpoint probed with sampling's checks, the best kept, sampling
and export use it, a resumed run never replaces a better snapshot with a worse one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import safetensors
import torch
from safetensors.torch import load_file

from facelab.augment.select import PROBE_SEED, SELECTION_FILE, SnapshotSelector, read_selection
from facelab.augment.trainer import BEST_FILE, GanTrainer, generate_fn, load_generator
from facelab.cli import main
from facelab.errors import FacelabError
from tests.test_gan_train import TINY, write_photo_faceset


class ScriptedJudge:
    """Stands in for sampling's Judge (tested in test_sample.py): passes the first ``k`` images of probe ``i``,
    where ``k`` comes from a script, and records the seeds it was shown."""

    def __init__(self, passes: list[int]) -> None:
        self._passes: Iterator[int] = iter(passes)
        self._left = 0
        self.seeds: list[int] = []
        self.closed = False

    def start_probe(self) -> None:
        self._left = next(self._passes)

    def __call__(self, image: np.ndarray, seed: int, generator_id: str, psi: float) -> tuple[str, SimpleNamespace]:
        assert image.dtype == np.uint8 and image.shape[2] == 3
        self.seeds.append(seed)
        if self._left > 0:
            self._left -= 1
            return "pass", SimpleNamespace(distance=0.5)
        return "wrong_identity", SimpleNamespace(distance=0.7)

    def close(self) -> None:
        self.closed = True


class ProbeEveryCheckpoint(SnapshotSelector):
    def __call__(self, trainer):  # noqa: ANN001, ANN204 - the base's signature
        self.judge.start_probe()
        return super().__call__(trainer)


@pytest.fixture(scope="module")
def faceset(tmp_path_factory, hopper) -> Path:
    return write_photo_faceset(tmp_path_factory.mktemp("sel") / "faces", hopper)


def _probing_trainer(faceset: Path, out: Path, passes: list[int], samples: int = 4) -> tuple[GanTrainer, ScriptedJudge]:
    judge = ScriptedJudge(passes)
    sel = ProbeEveryCheckpoint(faceset, out, samples, truncation=1.0, judge=judge)  # type: ignore[arg-type]
    trainer = GanTrainer(faceset, out, TINY, on_saved=sel)
    return trainer, judge


def test_best_snapshot_is_kept_and_only_replaced_by_a_better_one(tmp_path, faceset):
    out = tmp_path / "g"
    trainer, judge = _probing_trainer(faceset, out, [1, 3, 2])
    for it in (1, 2, 3):  # each run() ends with a checkpoint, so each is probed
        trainer.run(iterations=it)
    hist = read_selection(out)
    assert [(p.iteration, p.passed, p.best) for p in hist] == [(1, 1, True), (2, 3, True), (3, 2, False)]
    assert [p.median_distance for p in hist] == [0.7, 0.5, 0.6]  # of every face found, passing or not
    assert set(judge.seeds) == set(range(PROBE_SEED, PROBE_SEED + 4))  # never the seeds sampling draws from 0
    best, _, best_id = load_generator(out)  # default: the best snapshot (iteration 2)
    latest, _, _ = load_generator(out, snapshot="latest")
    assert best_id.startswith("g-")
    a, b = (generate_fn(g)([0, 1], 1.0) for g in (best, latest))
    assert not np.array_equal(a, b)
    meta = _header(out / BEST_FILE)
    assert meta["identity_pass"] == "0.7500" and float(meta["kimg"]) == pytest.approx(2 * TINY.batch / 1000)

    # a resumed run reads the history: a worse snapshot does not replace the best, a better one does
    trainer, judge = _probing_trainer(faceset, out, [2, 4])
    before = (out / BEST_FILE).read_bytes()
    trainer.run(iterations=4)
    assert (out / BEST_FILE).read_bytes() == before
    trainer.run(iterations=5)
    hist = read_selection(out)
    assert [p.best for p in hist] == [True, True, False, False, True] and hist[-1].rate == 1.0
    assert (out / BEST_FILE).read_bytes() != before
    trainer.on_saved.close()
    assert not judge.closed  # a judge passed in is the caller's (the benchmark shares its own) to close


def test_no_pass_keeps_no_snapshot_and_sampling_falls_back_to_the_latest(tmp_path, faceset):
    out = tmp_path / "g"
    trainer, _ = _probing_trainer(faceset, out, [0, 0])
    trainer.run(iterations=1)
    trainer.run(iterations=2)
    assert not (out / BEST_FILE).exists() and len(read_selection(out)) == 2
    g, _, _ = load_generator(out)
    latest, _, _ = load_generator(out, snapshot="latest")
    assert all(torch.equal(x, y) for x, y in zip(g.state_dict().values(), latest.state_dict().values()))
    with pytest.raises(FacelabError, match="snapshot must be best or latest"):
        load_generator(out, snapshot="newest")


def test_unreadable_history_is_a_one_line_error(tmp_path):
    (tmp_path / SELECTION_FILE).write_text("{not json")
    with pytest.raises(FacelabError, match=f"{SELECTION_FILE}: not a facelab probe history"):
        read_selection(tmp_path)


def test_cli_train_probes_with_sampling_checks_and_export_picks_the_snapshot(tmp_path, faceset, capsys):
    """The real Judge end to end: a 32 px generator after two iterations draws no face, so every probe fails, no
    best snapshot is written, and 'augment export' falls back to the latest; --probe-samples 0 turns probes off."""
    out = tmp_path / "cli"
    opts = ["--resolution", "32", "--cfg", "cpu", "--z-dim", "32", "--w-dim", "32", "--channel-base", "256",
            "--channel-max", "32", "--batch", "4", "--preview-every", "0", "--probe-samples", "3"]  # fmt: skip
    assert main(["augment", "train", "--faceset", str(faceset), "--out", str(out), "--kimg", "0.008", *opts]) == 0
    text = capsys.readouterr().out
    assert "every checkpoint probed with 3 samples" in text
    hist = json.loads((out / SELECTION_FILE).read_text())
    assert [(p["n"], p["passed"], p["median_distance"]) for p in hist] == [(3, 0, None)]  # no face: no median
    assert main(["augment", "export", "--gan", str(out), "--out", str(tmp_path / "e.safetensors")]) == 0
    assert main(["augment", "export", "--gan", str(out), "--out", str(tmp_path / "f.safetensors"),
                 "--snapshot", "latest"]) == 0  # fmt: skip
    e, f = (load_file(tmp_path / n) for n in ("e.safetensors", "f.safetensors"))
    assert e.keys() == f.keys() and all(torch.equal(e[k], f[k]) for k in e)
    assert _header(tmp_path / "e.safetensors") == _header(tmp_path / "f.safetensors")
    off = tmp_path / "off"
    opts[-1] = "0"
    assert main(["augment", "train", "--faceset", str(faceset), "--out", str(off), "--kimg", "0.004", *opts]) == 0
    assert "no probes" in capsys.readouterr().out and not (off / SELECTION_FILE).exists()


def _header(path: Path) -> dict[str, str]:
    with safetensors.safe_open(str(path), framework="pt") as f:
        return f.metadata()


def test_missing_checks_say_how_to_train_without_probes(tmp_path, faceset, monkeypatch):
    """A GPU machine without dlib: the error names the cause and the way out, in one line."""
    import facelab.augment.select as select

    def no_dlib(*a, **k):  # noqa: ANN002, ANN003, ANN202 - stands in for Judge
        raise FacelabError("dlib is not installed (run 'make test' or 'pip install -r requirements.txt')")

    monkeypatch.setattr(select, "Judge", no_dlib)
    with pytest.raises(FacelabError, match=r"dlib is not installed.*--probe-samples 0 trains without them") as e:
        SnapshotSelector(faceset, tmp_path / "g", 8)
    assert "\n" not in str(e.value)
