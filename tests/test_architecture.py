"""The layer contract of ARCHITECTURE.md (import-linter, configured in pyproject.toml) and the README's commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(package_parent: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter with the project's contract on the ``facelab`` package found in ``package_parent``."""
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=package_parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_layer_contract_is_kept() -> None:
    res = _lint_imports(REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "facelab layers KEPT" in res.stdout


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("facelab/geometry/_upward.py", "from facelab.merge import blend\n"),  # a low layer reaching up
        ("facelab/merge/_sideways.py", "from facelab.train import losses\n"),  # one stage importing another
        ("facelab/faces/_lazy.py", "def f():\n    from facelab.extract import pipeline\n"),  # even lazily
    ],
)
def test_breaking_a_layer_fails(tmp_path: Path, module: str, source: str) -> None:
    shutil.copytree(REPO / "facelab", tmp_path / "facelab", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / module).write_text(source)
    res = _lint_imports(tmp_path)
    assert res.returncode != 0, res.stdout
    assert "facelab layers BROKEN" in res.stdout
    assert module.removesuffix(".py").replace("/", ".") in res.stdout  # it names the offender
