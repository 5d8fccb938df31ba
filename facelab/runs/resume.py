"""What a resumed run may change: the config saved in its folder wins, except the options given again that are
resumable (batch size, autosave, ...). Every trainer (swap model, generator, mask) resumes by these rules."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, TypeVar

from facelab.errors import FacelabError

C = TypeVar("C")


def refused_changes(old: Any, new: Any, given: Collection[str], resumable: Collection[str] = ()) -> list[str]:
    """``"name old -> new"`` for every option in ``given`` that differs from the saved config and may not change."""
    return [
        f"{f.name} {getattr(old, f.name)} -> {getattr(new, f.name)}"
        for f in fields(old)
        if f.name in given and f.name not in resumable and getattr(old, f.name) != getattr(new, f.name)
    ]


def refuse(folder: str | Path, refused: list[str], new_folder: str) -> None:
    """One-line error listing the refused changes (``new_folder`` names the option that starts a fresh run)."""
    if refused:
        raise FacelabError(
            f"{folder}: these options cannot change on resume: {', '.join(refused)} (use a new {new_folder})"
        )


def resumed(
    old: C, new: C, given: Collection[str], resumable: Collection[str], folder: str | Path, new_folder: str
) -> C:
    """The saved config ``old`` with the resumable options of ``given`` taken from ``new``; refuses the rest."""
    refuse(folder, refused_changes(old, new, given, resumable), new_folder)
    return replace(old, **{k: getattr(new, k) for k in given if k in resumable})  # type: ignore[type-var]
