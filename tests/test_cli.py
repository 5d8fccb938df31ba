"""The CLI only parses: every README command line is accepted with all its flags, no CLI module grows past 200
lines, and the shared helpers (preset merging, progress) behave."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from facelab.cli import build_parser
from facelab.cli.common import given_options
from facelab.config import ModelConfig, TrainConfig
from facelab.runs.progress import run_progress
from facelab.train.presets import preset, with_preset

REPO = Path(__file__).resolve().parents[1]
CLI_DIR = REPO / "facelab" / "cli"
MAX_LINES = 200


def readme_examples() -> list[str]:
    """The ``facelab ...`` lines of README.md's "## Commands" block, continuation lines joined, comments cut."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("## Commands", 1)[1].split("```", 2)[1]
    examples: list[str] = []
    for line in block.splitlines():
        if line.startswith("facelab "):
            examples.append(line)
        elif line.startswith(" ") and line.strip() and examples:
            examples[-1] += " " + line.strip()
    return [e.split("  #", 1)[0].strip() for e in examples]


def command_path(example: str) -> list[str]:
    """The (sub)command words of an example: ``facelab faceset sort F --by blur`` -> ["faceset", "sort"]."""
    words = shlex.split(example.replace("|", " "))[1:]
    parser, path = build_parser(), []
    for word in words:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or word not in subs[0].choices:
            break
        parser = subs[0].choices[word]
        path.append(word)
    return path


def help_text(path: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*path, "--help"])
    assert exit_info.value.code == 0
    return out.getvalue()


EXAMPLES = readme_examples()


def test_readme_lists_every_command() -> None:
    subs = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert len(EXAMPLES) >= 19
    # `facelab evaluate` has its own README section ("Evaluation") instead of a line here
    assert {command_path(e)[0] for e in EXAMPLES} == set(subs.choices) - {"evaluate"}


@pytest.mark.parametrize("example", EXAMPLES, ids=[" ".join(command_path(e)) for e in EXAMPLES])
def test_readme_example_flags_are_in_the_help(example: str) -> None:
    path = command_path(example)
    assert path, example
    text = help_text(path)
    for flag in re.findall(r"(?<![\w-])--?[a-z][a-z0-9-]*", example):  # -o, --face-type, ...
        assert re.search(rf"(?<![\w-]){flag}(?![\w-])", text), (
            f"{example}: {flag} is not an option of 'facelab {' '.join(path)}'"
        )


def test_no_cli_module_over_200_lines() -> None:
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in CLI_DIR.glob("*.py")}
    assert "__init__.py" in sizes and "common.py" in sizes
    assert {n: s for n, s in sizes.items() if s > MAX_LINES} == {}


def test_detect_accepts_json() -> None:
    a = build_parser().parse_args(["detect", "--json", "a.jpg", "b.jpg"])
    assert a.json is True and a.images == ["a.jpg", "b.jpg"]
    assert "the only output format" in help_text(["detect"])


def test_config_options_are_none_unless_given() -> None:
    a = build_parser().parse_args(["train", "--dry-run", "--resolution", "96", "--no-random-warp"])
    assert given_options(a, ModelConfig) == {"resolution": 96}
    assert given_options(a, TrainConfig) == {"random_warp": False}


def test_explicit_options_win_over_the_preset_and_both_count_as_given() -> None:
    m, t, given = with_preset("cpu-quick", {"resolution": 64}, {"lr": 1e-4})
    quick_m, quick_t = preset("cpu-quick")
    assert m.resolution == 64 and m.archi == quick_m.archi and t.lr == 1e-4 and t.batch == quick_t.batch
    assert {"resolution", "lr", "archi", "batch", "optimizer"} <= given
    assert "seed" not in given  # left at the default by both
    m, t, given = with_preset(None, {}, {})
    assert (m, t, given) == (ModelConfig(), TrainConfig(), set())


def test_run_progress_counts_from_the_run_start() -> None:
    calls: list[tuple[int, int | None, str]] = []
    show = run_progress(lambda d, n, s: calls.append((d, n, s)), 10, 30, lambda s: f"loss {s['loss']}")
    assert show is not None
    show({"iteration": 15, "loss": 1})
    assert calls == [(5, 20, "loss 1")]
    assert run_progress(None, 0, 5, str) is None
    open_ended = run_progress(lambda d, n, s: calls.append((d, n, s)), 3, None, lambda s: "")
    assert open_ended is not None
    open_ended({"iteration": 4})
    assert calls[-1] == (1, None, "")
