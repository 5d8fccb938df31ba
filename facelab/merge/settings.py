"""Merge settings per frame (``facelab merge --settings FILE``, saved by the studio's merge tuner).

The file is JSON::

    {
      "format": "facelab-merge-settings/1",
      "base": {"erode": 0, "blur": 64, "color": "rct"},
      "ranges": [{"start": 120, "end": 180, "settings": {"erode": 20, "blur": 96}}],
      "source": {"dst": "clips/dst.mp4", "faceset": "dst_fs", "model": "model"}
    }

``base`` holds the settings of every frame; each range (``start`` and ``end`` are frame numbers, both included)
overrides some of them for its frames; where ranges overlap the later one wins. Only the settings a frame can
change (``PER_FRAME``) may appear; whole-run options (batch, crf, precision, runtime, ...) stay on the command
line. A setting in neither comes from ``MergeConfig``'s default. ``source`` (optional) records what the studio
tuned with; merge ignores it. Every problem is one line naming the file and the place in it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from facelab.config import MergeConfig
from facelab.errors import FacelabError
from facelab.imaging.color import CT_MODES
from facelab.merge.blend import MASK_MODES, SHARPEN_MODES

FORMAT = "facelab-merge-settings/1"
BLEND_MODES: tuple[str, ...] = ("overlay", "seamless", "hist-match")
# the MergeConfig fields a frame (or a range of frames) may set, with what each accepts
CHOICES: dict[str, tuple[str, ...]] = {
    "mask_mode": MASK_MODES,
    "color": CT_MODES,
    "blend": BLEND_MODES,
    "sharpen": SHARPEN_MODES,
}
BOUNDS: dict[str, tuple[int, int]] = {
    "erode": (-400, 400),
    "blur": (0, 400),
    "sharpen_amount": (-100, 100),
    "face_scale": (-50, 50),
    "motion_blur": (0, 100),
}
PER_FRAME: tuple[str, ...] = (
    "mask_mode",
    "erode",
    "blur",
    "color",
    "blend",
    "sharpen",
    "sharpen_amount",
    "face_scale",
    "motion_blur",
)
WHOLE_RUN: tuple[str, ...] = tuple(f.name for f in fields(MergeConfig) if f.name not in PER_FRAME)
SOURCE_KEYS: tuple[str, ...] = ("dst", "faceset", "model", "mask_model")


@dataclass(frozen=True)
class FrameRange:
    start: int
    end: int  # included
    settings: dict[str, Any]

    def __contains__(self, frame: int) -> bool:
        return self.start <= frame <= self.end


@dataclass
class MergeSettings:
    """Per-frame merge settings: ``base`` for every frame, ``ranges`` over it (later ones win)."""

    base: dict[str, Any] = field(default_factory=dict)
    ranges: list[FrameRange] = field(default_factory=list)
    source: dict[str, str] = field(default_factory=dict)

    def values_for_frame(self, frame: int) -> dict[str, Any]:
        values = dict(self.base)
        for r in self.ranges:
            if frame in r:
                values.update(r.settings)
        return values

    def settings_for_frame(self, frame: int, run: MergeConfig | None = None) -> MergeConfig:
        """The MergeConfig of ``frame``: ``run`` (the whole-run options; default MergeConfig()) with this file's
        settings for the frame."""
        return replace(run or MergeConfig(), **self.values_for_frame(frame))

    def mask_modes(self, run: MergeConfig | None = None) -> set[str]:
        """Every mask mode some frame may use (what the merge must be able to build before it starts)."""
        base = self.settings_for_frame(-1, run).mask_mode  # -1: in no range
        return {base} | {r.settings["mask_mode"] for r in self.ranges if "mask_mode" in r.settings}

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": FORMAT,
            "base": dict(self.base),
            "ranges": [asdict(r) for r in self.ranges],
        }
        if self.source:
            d["source"] = dict(self.source)
        return d

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1) + "\n"


def load_settings(path: str | Path) -> MergeSettings:
    """The settings file ``path``, checked; FacelabError (one line naming the file) on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise FacelabError(f"{path}: no such merge settings file") from e
    except (OSError, UnicodeDecodeError) as e:
        raise FacelabError(f"{path}: cannot read the merge settings file ({getattr(e, 'strerror', None) or e})") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise FacelabError(f"{path}: not JSON (line {e.lineno}, column {e.colno}: {e.msg})") from e
    return parse_settings(data, str(path))


def parse_settings(data: Any, where: str = "merge settings") -> MergeSettings:
    """``data`` (parsed JSON) checked into MergeSettings; errors are one line starting with ``where``."""

    def fail(msg: str) -> FacelabError:
        return FacelabError(f"{where}: {msg}")

    if not isinstance(data, dict):
        raise fail(f'expected a JSON object with "format": "{FORMAT}"')
    if data.get("format") != FORMAT:
        raise fail(f"format is {data.get('format')!r}, expected {FORMAT!r}")
    unknown = sorted(set(data) - {"format", "base", "ranges", "source"})
    if unknown:
        raise fail(f"unknown key {unknown[0]!r} (the file holds format, base, ranges and source)")
    base = check_values(data.get("base", {}), "base", fail)
    ranges_data = data.get("ranges", [])
    if not isinstance(ranges_data, list):
        raise fail('ranges: expected a list of {"start", "end", "settings"}')
    ranges = []
    for k, r in enumerate(ranges_data):
        at = f"ranges[{k}]"
        if not isinstance(r, dict):
            raise fail(f"{at}: expected an object with start, end and settings")
        extra = sorted(set(r) - {"start", "end", "settings"})
        if extra:
            raise fail(f"{at}: unknown key {extra[0]!r} (a range holds start, end and settings)")
        for key in ("start", "end"):
            v = r.get(key)
            if not _is_int(v) or v < 0:
                raise fail(f"{at}.{key}: expected a frame number >= 0, got {v!r}")
        if r["end"] < r["start"]:
            raise fail(f"{at}: end {r['end']} is before start {r['start']}")
        ranges.append(FrameRange(r["start"], r["end"], check_values(r.get("settings", {}), f"{at}.settings", fail)))
    source = data.get("source", {})
    if not isinstance(source, dict) or any(k not in SOURCE_KEYS or not isinstance(v, str) for k, v in source.items()):
        raise fail(f"source: expected an object of paths ({', '.join(SOURCE_KEYS)})")
    return MergeSettings(base, ranges, dict(source))


def check_values(values: Any, at: str, fail: Any = None) -> dict[str, Any]:
    """``values`` (a settings object of the file) checked: per-frame MergeConfig fields with valid values."""
    fail = fail or (lambda msg: FacelabError(msg))
    if not isinstance(values, dict):
        raise fail(f"{at}: expected an object of merge settings")
    out: dict[str, Any] = {}
    for name, v in values.items():
        if name in WHOLE_RUN:
            flag = "--" + name.replace("_", "-")
            raise fail(f"{at}.{name}: applies to the whole merge, not per frame (give {flag} on the command line)")
        if name not in PER_FRAME:
            raise fail(f"{at}: unknown setting {name!r} (per-frame settings: {', '.join(PER_FRAME)})")
        if name in CHOICES:
            if v not in CHOICES[name]:
                raise fail(f"{at}.{name}: {v!r} is not one of {', '.join(CHOICES[name])}")
        else:
            lo, hi = BOUNDS[name]
            if not _is_int(v) or not lo <= v <= hi:
                raise fail(f"{at}.{name}: expected an integer {lo}..{hi}, got {v!r}")
        out[name] = v
    return out


def per_frame_values(cfg: MergeConfig) -> dict[str, Any]:
    """The per-frame settings of ``cfg`` (what a studio page saves as ``base``)."""
    return {name: getattr(cfg, name) for name in PER_FRAME}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
