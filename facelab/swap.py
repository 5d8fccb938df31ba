"""``facelab swap``: the whole job in one resumable command - extract both sides, train, merge, report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from facelab import __version__
from facelab.config import ExtractConfig, MergeConfig, SwapConfig
from facelab.extract.pipeline import extract
from facelab.io.atomic import ensure_writable_dir, write_atomic
from facelab.io.media import frame_sequence, probe
from facelab.io.paths import media_label, refuse_overlap
from facelab.merge.pipeline import merge
from facelab.merge.preview import contact_sheet
from facelab.train.loop import CONFIG_FILE, Trainer
from facelab.train.presets import preset
from facelab.train.warm import check_pretrained, start_from_pretrained


@dataclass
class SwapReport:
    output: str
    workdir: str
    preset: str
    seconds: dict[str, float] = field(default_factory=dict)
    src_faces: int = 0
    dst_faces: int = 0
    iterations: int = 0
    merged_frames: int = 0
    contact_sheet: str = ""
    preview: str = ""

    def summary(self) -> str:
        return f"video: {self.output}\ncontact sheet: {self.contact_sheet}\nreport: {self.workdir}/report.md"


def swap(
    sources: list[str | Path],
    dst: str | Path,
    output: str | Path,
    preset_name: str = SwapConfig.preset,
    iters: int | None = None,
    minutes: float | None = None,
    workdir: str | Path | None = None,
    merge_cfg: MergeConfig | None = None,
    log: Callable[[str], None] = print,
    fps: float | None = None,
    pretrained: str | Path | None = None,
) -> SwapReport:
    """Run (or continue) the whole pipeline. Every stage resumes: re-running skips finished extraction, continues
    training from the last checkpoint up to ``iters`` total (or for ``minutes`` more), and merges again.
    ``dst`` may be a video or a folder of frames (natural name order; written at ``fps``, default 30, no audio).
    ``pretrained``: a model made by ``facelab train --pretrain`` that a new model starts from (ignored on resume)."""
    output, dst = Path(output), Path(dst)
    work = Path(workdir or output.with_name(output.stem + ".facelab"))
    # checked before hours of work: every stage checks its own paths, but merge, the last, runs after training
    srcs = {media_label("src", s) + (f" {i + 1}" if len(sources) > 1 else ""): s for i, s in enumerate(sources)}
    refuse_overlap({**srcs, media_label("dst", dst): dst}, {"-o": output, "--workdir": work})
    for src in sources:  # a missing or unreadable input fails now, before the work folder is made
        probe(src)
    if dst.is_dir():  # a bad frame folder (mixed sizes, unreadable file) fails now, not after training
        frame_sequence(dst)
    else:
        probe(dst)
    mcfg, tcfg = preset(preset_name)
    if pretrained is not None:  # refused now, not after extraction, if it is not a pretrained model of this preset
        check_pretrained(pretrained, mcfg)
    ensure_writable_dir(work, "--workdir")
    rep = SwapReport(str(output), str(work), preset_name)
    ecfg = ExtractConfig(face_type="whole_face", size=max(256, 2 * mcfg.resolution))

    t = time.perf_counter()
    for src in sources:
        log(f"extract src {src}")
        extract(src, work / "src_faceset", ecfg)
    log(f"extract dst {dst}")
    extract(dst, work / "dst_faceset", ecfg)
    rep.seconds["extract"] = time.perf_counter() - t

    t = time.perf_counter()
    if pretrained is not None and not (work / "model" / CONFIG_FILE).exists():
        log(f"start from pretrained model {pretrained}")
        start_from_pretrained(pretrained, work / "model", mcfg)
    # "pretrain" counts as given: a model copied from a pretrained one leaves pretraining on its first run
    trainer = Trainer(work / "src_faceset", work / "dst_faceset", work / "model", mcfg, tcfg, {"pretrain"})
    rep.src_faces, rep.dst_faces = len(trainer.src_bank), len(trainer.dst_bank)
    log(
        f"train {mcfg.archi} @ {mcfg.resolution} on {rep.src_faces} src / {rep.dst_faces} dst faces, "
        f"from iteration {trainer.iteration}"
    )
    res = trainer.run(iterations=iters, minutes=minutes)
    rep.iterations = res.iteration
    rep.preview = str(work / "model" / "preview.png")
    rep.seconds["train"] = time.perf_counter() - t

    t = time.perf_counter()
    log(f"merge into {output}")
    s = merge(dst, work / "model", output, merge_cfg, faceset=work / "dst_faceset", fps=fps)
    rep.merged_frames = s.frames
    rep.seconds["merge"] = time.perf_counter() - t
    frames = sorted({0, s.frames // 2, max(0, s.frames - 1)})
    grid = {"color": ["none", "rct"], "blur": [16, 96]}
    # the faceset's faces, as in the merge (and its stored masks, if the mask mode wants them)
    sheet = work / "contact_sheet.png"
    cfg = merge_cfg or MergeConfig()
    rep.contact_sheet = str(contact_sheet(dst, work / "model", frames, grid, cfg, sheet, faceset=work / "dst_faceset"))
    write_atomic(work / "report.json", json.dumps({**asdict(rep), "facelab_version": __version__}, indent=1).encode())
    write_atomic(work / "report.md", _report_md(rep).encode())
    return rep


def _report_md(rep: SwapReport) -> str:
    secs = ", ".join(f"{k} {v / 60:.1f} min" for k, v in rep.seconds.items())
    return (
        f"# facelab swap\n\n- output: `{rep.output}` ({rep.merged_frames} frames, tagged as synthetic media)\n"
        f"- preset: {rep.preset}; {rep.iterations} training iterations on {rep.src_faces} src / "
        f"{rep.dst_faces} dst faces\n- time: {secs}\n- training preview: `{rep.preview}`\n"
        f"- merge options contact sheet: `{rep.contact_sheet}`\n"
    )
