"""Helpers shared by the benchmark scripts: the ``--data`` argument, point-set geometry, tables and JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"


def data_parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser described by the first paragraph of ``doc``, with ``--data`` and ``--json``."""
    parser = argparse.ArgumentParser(description=" ".join((doc or "").split("\n\n")[0].split()))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="real-media set (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write every figure to OUT")
    return parser


def require_data(data: Path, *needed: str) -> Path:
    """``data`` if it and each ``needed`` entry inside it exist; otherwise exit 2 with a one-line message."""
    for rel in ("", *needed):
        if not (data / rel).exists():
            print(
                f"test data not found: {data / rel} (pass --data PATH; the set lives in ../shared/data)",
                file=sys.stderr,
            )
            sys.exit(2)
    return data


def require_pair(data: Path, name: str) -> dict[str, Any]:
    """The swap pair called ``name`` in ``data/pairs.json``; otherwise exit 2 with a one-line message."""
    pairs = json.loads((require_data(data, "pairs.json") / "pairs.json").read_text())["pairs"]
    pair = next((p for p in pairs if p["name"] == name), None)
    if pair is None:
        print(f"no pair {name!r} in {data / 'pairs.json'} (choose from {', '.join(p['name'] for p in pairs)})",
              file=sys.stderr)  # fmt: skip
        sys.exit(2)
    return pair


def mean_point_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Euclidean distance between corresponding points of two (N, 2) arrays."""
    return float(np.linalg.norm(np.asarray(a, float) - np.asarray(b, float), axis=-1).mean())


def face_size(points: np.ndarray) -> float:
    """Largest extent (x or y) of a landmark set, in its own units."""
    return float(np.ptp(np.asarray(points, float), axis=0).max())


def fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    """A number for a table cell; ``-`` when there is none."""
    if value is None or not np.isfinite(value):
        return "-"
    return f"{value:.{digits}f}{suffix}"


def print_table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1, notes: Sequence[str] = ()
) -> None:
    """A plain-text table: the first ``left`` columns left-aligned, the rest right-aligned; notes underneath."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    print(f"\n{title}")
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))
    for note in notes:
        print(f"  {note}")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def write_json(path: Path | None, figures: dict[str, Any]) -> None:
    """Write ``figures`` to ``path`` (nothing when ``path`` is None); numpy scalars become plain numbers."""
    if path is None:
        return
    path.write_text(json.dumps(figures, indent=1, default=_plain) + "\n")
    print(f"\nfigures written to {path}")


def _plain(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
