"""benchmarks/augment_experiment.py: the paired verdict, and the --quick smoke run on a real pair."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks.augment_experiment import verdict
from conftest import shared_path


def test_paired_verdict_sees_a_consistent_shift_through_seed_noise():
    base = [0.50, 0.80, 0.62]  # seeds differ a lot ...
    better = [b - 0.05 for b in base]  # ... but the arm is 0.05 lower on every seed
    assert verdict(base, better, lower_better=True)[1] == "better"
    assert verdict(base, better, lower_better=False)[1] == "worse"
    mixed = [0.55, 0.74, 0.64]
    assert verdict(base, mixed, lower_better=True)[1] == "no difference"
    assert verdict(base[:1], better[:1], lower_better=True)[1] == "1 seed: no verdict"
    assert verdict(base[:2], better[:2], lower_better=True)[1] == "2 seeds: no verdict"
    assert verdict([float("nan")], [1.0], lower_better=True)[1] == "n/a"


def test_verdict_needs_more_than_three_seeds_agreeing_in_sign():
    # three same-sign differences with a wide spread: a percentile bootstrap's interval is their range and would
    # call this "better"; noise alone gives three same-sign differences 1 time in 4
    base = [0.5, 0.5, 0.5]
    noisy = [0.49, 0.2, 0.0]
    assert verdict(base, noisy, lower_better=True)[1] == "no difference"
    rng = np.random.default_rng(0)  # what a bootstrap would have said
    d = np.array(noisy) - np.array(base)
    assert np.percentile(rng.choice(d, size=(10_000, 3)).mean(1), 97.5) < 0


def test_quick_run_end_to_end(tmp_path):
    data = shared_path("pairs.json").parent  # skips without ../shared/data
    r = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parents[1] / "benchmarks" / "augment_experiment.py"), "--quick", "--data", str(data), "--out", str(tmp_path),
         "--arms", "baseline,render,gan"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert "gan: no faces" in r.stdout and "identity_transfer" in r.stdout
    assert "1-iteration blob" in r.stdout  # the untrained control, beside the baseline
    assert (tmp_path / "p2_to_p1_quick" / "runs" / "baseline_seed0.json").exists()
    again = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parents[1] / "benchmarks" / "augment_experiment.py"), "--quick", "--data", str(data), "--out", str(tmp_path),
         "--arms", "baseline,render", "--report-only"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    assert "identity_transfer" in again.stdout and "1-iteration blob" in again.stdout
    assert "seed 0:" not in again.stdout  # nothing trained: the recorded runs are tabled as they are


def test_table_pairs_arms_by_seed_only_where_both_ran():
    from benchmarks.augment_experiment import _table

    def run(arm: str, seed: int, value: float) -> dict:
        return {"arm": arm, "seed": seed, "metrics": {"identity_transfer": value}, "bins": {}}

    # the baseline has two seeds, the arm one: its only pair is seed 0, however far seed 1 lies
    runs = {"baseline": [run("baseline", 0, 0.70), run("baseline", 1, 0.90)], "render": [run("render", 0, 0.65)]}
    row = next(line for line in _table(runs).splitlines() if line.startswith("all") and "identity_transfer" in line)
    assert "(-0.050, 1 seed: no verdict)" in row


def test_doc_says_what_each_synthetic_source_added(tmp_path):
    from benchmarks.augment_experiment import _sources, _write_doc

    work = tmp_path / "work"
    (work / "renders").mkdir(parents=True)
    (work / "renders" / ".done").write_text("35 renders (augment render --fill)\n")
    assert _sources(work) == {"render": "35 renders (augment render --fill)"}  # no gan_faces yet: not named
    doc = tmp_path / "augment.md"
    runs = {"baseline": [{"train_minutes": 31.0}]}
    _write_doc(doc, "p2_to_p1", 2250, 3, "table", "benchmarks/augment_experiment.py", runs, _sources(work))
    assert "- render: 35 renders (augment render --fill)" in doc.read_text() and "in unrecorded," in doc.read_text()
    _write_doc(doc, "p2_to_p1", 2250, 3, "table", "benchmarks/augment_experiment.py", runs, {})
    assert "Synthetic src faces" not in doc.read_text()


def test_an_arm_is_not_trained_in_other_arithmetic_than_its_baseline(tmp_path):
    import json

    from benchmarks.augment_experiment import _precision_clash

    (tmp_path / "baseline_seed0.json").write_text(json.dumps({"precision": "bf16"}))
    (tmp_path / "baseline_seed1.json").write_text(json.dumps({}))  # recorded before runs stored it: no claim
    clash = _precision_clash("gan", 0, "fp32", None, tmp_path)
    assert clash is not None and "baseline seed 0 trained in bf16" in clash and "--precision bf16" in clash
    assert _precision_clash("gan", 0, "bf16", None, tmp_path) is None
    assert _precision_clash("gan", 1, "fp32", None, tmp_path) is None
    assert _precision_clash("gan", 2, "fp32", None, tmp_path) is None  # no baseline of that seed yet
    assert _precision_clash("baseline", 0, "fp32", None, tmp_path) is None  # the baseline sets it
    # a run trained on from a checkpoint keeps its own arithmetic, baseline or not
    assert "its first part trained in fp32" in _precision_clash("baseline", 0, "bf16", {"precision": "fp32"}, tmp_path)
