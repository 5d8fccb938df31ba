"""The ``facelab`` command: parse arguments and dispatch to the stages. No pipeline logic lives here."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from dataclasses import fields, replace

from facelab import __version__
from facelab.config import ExtractConfig
from facelab.errors import FacelabError

log = logging.getLogger("facelab")


# --- extract -----------------------------------------------------------------------------------------------------


def _add_extract(sub: argparse._SubParsersAction) -> None:
    d = ExtractConfig()
    p = sub.add_parser("extract", help="video / image folder / image -> aligned faceset")
    p.add_argument("input", help="video file, folder of images, or one image")
    p.add_argument("-o", "--output", required=True, help="faceset folder to write")
    p.add_argument("--face-type", default=d.face_type, help="h | mf | f | wf | head (default: %(default)s)")
    p.add_argument("--size", type=int, default=d.size, help="aligned face side in px (default: %(default)s)")
    p.add_argument("--detector", default=d.detector, help="mediapipe | dlib-hog | dlib-mmod (default: %(default)s)")
    p.add_argument(
        "--landmarks", default=d.landmarker, dest="landmarker", help="dlib68 | facemesh (default: %(default)s)"
    )
    p.add_argument("--no-refine", action="store_false", dest="refine", help="skip the second landmark pass")
    p.add_argument("--no-smooth", action="store_false", dest="smooth", help="no temporal landmark smoothing (video)")
    p.add_argument("--format", default=d.image_format, dest="image_format", choices=["jpg", "png"])
    p.add_argument("--quality", type=int, default=d.jpeg_quality, dest="jpeg_quality", help="JPEG quality")
    p.add_argument("--interpolation", default=d.interpolation, choices=["cubic", "lanczos"])
    p.add_argument("--every", type=int, default=d.every, help="use one frame in N")
    p.add_argument(
        "--max-faces", type=int, default=d.max_faces, help="at most N faces per frame, largest first (0 = all)"
    )
    p.add_argument("--only-like", default=None, metavar="PHOTO", help="keep only faces of the person in PHOTO")
    p.add_argument("--only-like-threshold", type=float, default=d.only_like_threshold)
    p.add_argument("--debug", default=None, dest="debug_dir", metavar="DIR", help="write annotated frames to DIR")
    p.add_argument("--force", action="store_true", help="redo an extraction that already completed")
    p.add_argument("--jobs", type=int, default=d.jobs, help="parallel face finders (default: %(default)s)")
    p.set_defaults(func=_cmd_extract)


def _cmd_extract(a: argparse.Namespace) -> int:
    from facelab.extract.pipeline import extract

    cfg = ExtractConfig(**{k: getattr(a, k) for k in vars(ExtractConfig()) if hasattr(a, k)})
    with _Progress("extract", "frame") as bar:
        s = extract(a.input, a.output, cfg, progress=bar.update, force=a.force)
    if s.frames_read == 0 and s.resumed_from and not s.faces_written:
        print(f"{a.input}: already extracted into {a.output} (use --force to redo)")
        return 0
    print(
        f"{s.frames_read} frames read, {s.faces_written} faces written to {s.output} "
        f"({s.fps:.1f} frames/s{', resumed at ' + str(s.resumed_from) if s.resumed_from else ''})"
    )
    if s.frames_without_face:
        shown = ", ".join(s.frames_without_face[:10]) + (" ..." if len(s.frames_without_face) > 10 else "")
        print(f"{len(s.frames_without_face)} frames with no face: {shown} (full list in extract-summary.json)")
    if s.faces_rejected_identity:
        print(f"{s.faces_rejected_identity} faces skipped as not like {a.only_like}")
    if s.unreadable:
        print(f"{len(s.unreadable)} unreadable images skipped")
    return 0


# --- detect ------------------------------------------------------------------------------------------------------


def _add_detect(sub: argparse._SubParsersAction) -> None:
    d = ExtractConfig()
    p = sub.add_parser("detect", help="faces, 68 landmarks and head pose of images, as JSON lines")
    p.add_argument("images", nargs="+")
    p.add_argument("--json", action="store_true", help="one JSON object per image (the only output format)")
    p.add_argument("--detector", default=d.detector)
    p.add_argument("--landmarks", default=d.landmarker, dest="landmarker")
    p.add_argument("--no-refine", action="store_false", dest="refine")
    p.set_defaults(func=_cmd_detect)


def _cmd_detect(a: argparse.Namespace) -> int:
    from facelab.faces.finder import FaceFinder
    from facelab.geometry.pose import head_pose
    from facelab.io.media import read_image

    finder = FaceFinder(a.detector, a.landmarker, a.refine)
    status = 0
    for path in a.images:
        try:
            img = read_image(path)
        except FacelabError as e:
            print(f"facelab: {e}", file=sys.stderr)
            status = 1
            continue
        h, w = img.shape[:2]
        faces = []
        for f in finder.find(img):
            yaw, pitch, roll = head_pose(f.points, (w, h))
            faces.append(
                {
                    "box": [round(v, 1) for v in f.box.as_list()],
                    "score": round(f.box.score, 4),
                    "landmarks": [[round(x, 2), round(y, 2)] for x, y in f.points],
                    "yaw": round(yaw, 2),
                    "pitch": round(pitch, 2),
                    "roll": round(roll, 2),
                }
            )
        print(json.dumps({"image": path, "width": w, "height": h, "faces": faces}), flush=True)
    return status


# --- faceset -----------------------------------------------------------------------------------------------------


def _add_faceset(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("faceset", help="inspect, compare, sort, dedupe, filter and import facesets")
    fs = p.add_subparsers(dest="faceset_cmd", required=True, metavar="{info,coverage,sort,dedupe,filter,import}")
    _add_faceset_info(fs)
    _add_faceset_coverage(fs)
    _add_faceset_sort(fs)
    _add_faceset_dedupe(fs)
    _add_faceset_filter(fs)
    _add_faceset_import(fs)


def _add_faceset_info(fs: argparse._SubParsersAction) -> None:
    p = fs.add_parser("info", help="counts and pose histogram of a faceset (facelab or DFL folder)")
    p.add_argument("folder")
    p.add_argument("--plot", metavar="PNG", help="also write the yaw/pitch histogram as a PNG")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_faceset_info)


def _cmd_faceset_info(a: argparse.Namespace) -> int:
    from facelab.faceset.info import faceset_info, format_info, plot_pose_histogram

    info = faceset_info(a.folder)
    print(json.dumps(info, indent=1) if a.json else format_info(info))
    if a.plot:
        plot_pose_histogram(a.folder, a.plot)
        print(f"pose histogram written to {a.plot}")
    return 0


def _add_faceset_coverage(fs: argparse._SubParsersAction) -> None:
    from facelab.faceset.coverage import MIN_DST, THIN_FRACTION

    p = fs.add_parser(
        "coverage",
        help="pose and expression bins where DST has faces and SRC has few (and synthetic faces per bin)",
    )
    p.add_argument("src", help="source faceset (the face to put in; synthetic faces in it are counted apart)")
    p.add_argument("dst", help="destination faceset (the faces to replace)")
    p.add_argument(
        "--png",
        metavar="PATH",
        help="heatmap PNG to write (default: beside SRC as SRC.coverage.png; inside the faceset folder a PNG "
        "would be taken for a face)",
    )
    p.add_argument("--no-plot", action="store_true", help="print only, write no PNG")
    p.add_argument(
        "--min-dst",
        type=int,
        default=MIN_DST,
        help="a thin bin holds at least this many dst faces (default: %(default)s)",
    )
    p.add_argument(
        "--fraction",
        type=float,
        default=THIN_FRACTION,
        help="a thin bin's src share is below this fraction of its dst share (default: %(default)s)",
    )
    p.add_argument("--json", action="store_true", help="print the counts and thin bins as JSON")
    p.set_defaults(func=_cmd_faceset_coverage)


def _cmd_faceset_coverage(a: argparse.Namespace) -> int:
    from facelab.faceset.coverage import folder_coverage, format_coverage, plot_coverage

    if not 0 < a.fraction <= 1 or a.min_dst < 1:
        raise FacelabError("--fraction must be in (0, 1] and --min-dst at least 1")
    cov = folder_coverage(a.src, a.dst)
    if a.json:
        print(json.dumps(cov.to_dict(min_dst=a.min_dst, fraction=a.fraction), indent=1))
    else:
        print(format_coverage(cov, min_dst=a.min_dst, fraction=a.fraction))
    if not a.no_plot:
        png = a.png or a.src.rstrip("/\\") + ".coverage.png"
        plot_coverage(cov, png, min_dst=a.min_dst, fraction=a.fraction)
        print(f"coverage plot written to {png}", file=sys.stderr if a.json else sys.stdout)
    return 0


def _add_faceset_sort(fs: argparse._SubParsersAction) -> None:
    p = fs.add_parser("sort", help="order faces by blur, yaw, pitch, histogram, size or identity")
    p.add_argument("folder")
    p.add_argument("--by", required=True, choices=["blur", "yaw", "pitch", "hist", "size", "identity"])
    p.add_argument("--photo", help="reference photo for --by identity")
    p.add_argument("--order-file", metavar="TXT", help="write the order to TXT instead of renaming files")
    p.set_defaults(func=_cmd_faceset_sort)


def _cmd_faceset_sort(a: argparse.Namespace) -> int:
    from facelab.faceset.sort import apply_order, sort_faceset

    order = sort_faceset(a.folder, a.by, photo=a.photo)
    apply_order(a.folder, order, order_file=a.order_file)
    print(
        f"{len(order)} faces sorted by {a.by}"
        + (f"; order written to {a.order_file}" if a.order_file else " (renamed)")
    )
    return 0


def _add_faceset_dedupe(fs: argparse._SubParsersAction) -> None:
    p = fs.add_parser("dedupe", help="find near-duplicate faces (moved to --trash, else only listed)")
    p.add_argument("folder")
    # consecutive talking-head frames differ by ~0.01 (median, measured on ../shared/data clips); 0.05 would
    # throw away 93 % of a video faceset
    p.add_argument(
        "--threshold", type=float, default=0.015, help="mean absolute difference at 64 px, 0-1 (default: %(default)s)"
    )
    p.add_argument("--trash", metavar="DIR", help="move duplicates here (nothing is ever deleted)")
    p.set_defaults(func=_cmd_faceset_dedupe)


def _cmd_faceset_dedupe(a: argparse.Namespace) -> int:
    from facelab.faceset.dedupe import find_duplicates
    from facelab.faceset.sort import move_to_trash

    dups = find_duplicates(a.folder, a.threshold)
    for dup, kept in dups:
        print(f"{dup.name} duplicates {kept.name}")
    if a.trash and dups:
        move_to_trash([d for d, _ in dups], a.trash)
    print(f"{len(dups)} near-duplicates" + (f" moved to {a.trash}" if a.trash else " (use --trash DIR to move them)"))
    return 0


def _add_faceset_filter(fs: argparse._SubParsersAction) -> None:
    p = fs.add_parser("filter", help="select faces by pose range or sharpness (rejects moved to --trash, else listed)")
    p.add_argument("folder")
    p.add_argument("--yaw", nargs=2, type=float, metavar=("MIN", "MAX"), help="keep yaw in [MIN, MAX] degrees")
    p.add_argument("--pitch", nargs=2, type=float, metavar=("MIN", "MAX"), help="keep pitch in [MIN, MAX] degrees")
    p.add_argument("--min-blur", type=float, help="keep faces with sharpness score >= this")
    p.add_argument("--trash", metavar="DIR", help="move rejected faces here (nothing is ever deleted)")
    p.set_defaults(func=_cmd_faceset_filter)


def _cmd_faceset_filter(a: argparse.Namespace) -> int:
    from facelab.faceset.sort import filter_faceset, move_to_trash

    rejected = filter_faceset(a.folder, yaw=a.yaw, pitch=a.pitch, min_blur=a.min_blur)
    for p in rejected:
        print(f"reject {p.name}")
    if a.trash and rejected:
        move_to_trash(rejected, a.trash)
    print(
        f"{len(rejected)} faces rejected" + (f", moved to {a.trash}" if a.trash else " (use --trash DIR to move them)")
    )
    return 0


def _add_faceset_import(fs: argparse._SubParsersAction) -> None:
    p = fs.add_parser("import", help="convert a DeepFaceLab aligned folder (metadata read without unpickling code)")
    p.add_argument("folder", help="DFL aligned folder")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=_cmd_faceset_import)


def _cmd_faceset_import(a: argparse.Namespace) -> int:
    from facelab.faceset.dfl import import_dfl

    s = import_dfl(a.folder, a.output)
    print(f"{s.converted} DFL faces converted into {a.output}" + (f"; {len(s.skipped)} skipped" if s.skipped else ""))
    for path, why in s.skipped[:20]:
        print(f"  skipped {path}: {why}")
    return 0


# --- train -------------------------------------------------------------------------------------------------------


def _add_config_options(p: argparse.ArgumentParser, cls: type, title: str) -> None:
    """One option per dataclass field (defaults stay in config.py; None here means "not given")."""
    g = p.add_argument_group(title)
    for f in fields(cls):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(cls(), f.name)
        if isinstance(default, bool):
            g.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=f"(default: {default})")
        else:
            g.add_argument(
                flag, type=str if default is None else type(default), default=None, help=f"(default: {default})"
            )


def _add_train(sub: argparse._SubParsersAction) -> None:
    from facelab.config import ModelConfig, TrainConfig
    from facelab.train.presets import PRESETS

    p = sub.add_parser("train", help="train a swap model on a src and a dst faceset (resumes if --model exists)")
    p.add_argument("--src", help="source faceset (the face to put in)")
    p.add_argument("--dst", help="destination faceset (the face to replace)")
    p.add_argument("--model", help="model folder; an existing one is resumed")
    p.add_argument("--iters", type=int, help="train until this many iterations in total")
    p.add_argument("--minutes", type=float, help="train for this many minutes")
    p.add_argument("--preset", choices=list(PRESETS), help="named option set (explicit options still win)")
    p.add_argument("--dry-run", action="store_true", help="print the model's parameter counts and exit")
    _add_config_options(p, ModelConfig, "model (fixed once a model is created)")
    _add_config_options(p, TrainConfig, "training")
    p.set_defaults(func=_cmd_train)


def _cmd_train(a: argparse.Namespace) -> int:
    from facelab.config import ModelConfig, TrainConfig

    given = {f.name for cls in (ModelConfig, TrainConfig) for f in fields(cls) if getattr(a, f.name) is not None}
    if a.preset:
        from facelab.train.presets import preset

        mcfg, tcfg = preset(a.preset)
        given |= {f.name for f in fields(ModelConfig) if getattr(mcfg, f.name) != getattr(ModelConfig(), f.name)}
        given |= {f.name for f in fields(TrainConfig) if getattr(tcfg, f.name) != getattr(TrainConfig(), f.name)}
    else:
        mcfg, tcfg = ModelConfig(), TrainConfig()
    mcfg = replace(mcfg, **{f.name: getattr(a, f.name) for f in fields(ModelConfig) if getattr(a, f.name) is not None})
    tcfg = replace(tcfg, **{f.name: getattr(a, f.name) for f in fields(TrainConfig) if getattr(a, f.name) is not None})
    if a.dry_run:
        from facelab.models.saehd import SAEHD, validate

        validate(mcfg)
        counts = SAEHD(mcfg).param_counts()
        print(
            f"{mcfg.archi} @ {mcfg.resolution} (ae {mcfg.ae_dims}, e {mcfg.e_dims}, d {mcfg.d_dims}, "
            f"d_mask {mcfg.d_mask_dims}, {mcfg.face_type})"
        )
        for k, v in counts.items():
            print(f"  {k:12} {v:>13,}")
        return 0
    missing = [n for n in ("src", "dst", "model") if not getattr(a, n)]
    if missing:
        raise FacelabError(f"train needs {', '.join('--' + m for m in missing)}")
    from facelab.train.loop import Trainer

    trainer = Trainer(a.src, a.dst, a.model, mcfg, tcfg, given)
    print(
        f"{trainer.mcfg.archi} @ {trainer.mcfg.resolution}: {trainer.model.param_counts()['total']:,} parameters; "
        f"{len(trainer.src_bank)} src{_synth(trainer.src_bank.synthetic)} / {len(trainer.dst_bank)} dst"
        f"{_synth(trainer.dst_bank.synthetic)} faces; starting at iteration {trainer.iteration}"
    )
    with _Progress("train", "it") as bar:

        def show(s: dict) -> None:
            bar.update(s["iteration"] - trainer_start, total)
            if bar.bar is not None:
                bar.bar.set_postfix_str(f"{s['ms_per_iter']:.0f} ms src {s['src']:.4f} dst {s['dst']:.4f}")

        trainer_start = trainer.iteration
        total = (a.iters - trainer_start) if a.iters else None
        res = trainer.run(a.iters, a.minutes, progress=show)
    print(
        f"stopped at iteration {res.iteration} ({res.stopped}) after {res.seconds / 60:.1f} min; "
        f"checkpoint, preview.png and losses.png in {a.model}"
    )
    return 0


def _synth(n: int) -> str:
    return f" ({n} synthetic)" if n else ""


def _add_merge(sub: argparse._SubParsersAction) -> None:
    from facelab.config import MergeConfig

    p = sub.add_parser("merge", help="put a trained model's faces into the dst video (audio kept, tagged synthetic)")
    p.add_argument("dst", help="destination video, or a folder of frames (natural name order)")
    p.add_argument("--model", required=True, help="model folder from 'facelab train'")
    p.add_argument("--fps", type=float, help="frame rate of a frame-folder dst for video output (default 30)")
    p.add_argument("-o", "--output", required=True, help="output video (.mp4/.mkv/.mov) or a folder for PNG frames")
    p.add_argument("--faceset", help="the dst's faceset from 'facelab extract' (default: find faces on the fly)")
    p.add_argument("--mask-output", help="also write each frame's blend mask (video file or folder)")
    p.add_argument(
        "--preview",
        metavar="FRAMES",
        help="comma-separated frame numbers: write a contact sheet PNG to OUTPUT instead of a video",
    )
    p.add_argument("--grid", nargs="*", default=[], metavar="OPT=V1,V2", help="options to vary in the contact sheet")
    _add_config_options(p, MergeConfig, "merge")
    p.set_defaults(func=_cmd_merge)


def _cmd_merge(a: argparse.Namespace) -> int:
    from facelab.config import MergeConfig

    cfg = replace(
        MergeConfig(), **{f.name: getattr(a, f.name) for f in fields(MergeConfig) if getattr(a, f.name) is not None}
    )
    if a.preview:
        from facelab.merge.preview import contact_sheet, parse_grid

        frames = [int(v) for v in a.preview.split(",")]
        out = contact_sheet(a.dst, a.model, frames, parse_grid(a.grid), cfg, a.output, faceset=a.faceset)
        print(f"contact sheet written to {out}")
        return 0
    from facelab.merge.pipeline import merge

    with _Progress("merge", "frame") as bar:
        s = merge(
            a.dst, a.model, a.output, cfg, faceset=a.faceset, progress=bar.update, mask_output=a.mask_output, fps=a.fps
        )
    print(
        f"{s.frames} frames, {s.faces_swapped} faces swapped ({s.fps:.1f} frames/s) -> {s.output}; "
        f"settings in {s.output.rstrip('/')}.merge.json"
    )
    return 0


def _add_swap(sub: argparse._SubParsersAction) -> None:
    from facelab.train.presets import PRESETS

    p = sub.add_parser("swap", help="the whole job: extract both sides, train, merge, report (resumable)")
    p.add_argument("src", nargs="+", help="source video(s) and/or image folders (the face to put in)")
    p.add_argument("dst", help="destination video, or a folder of frames (natural name order)")
    p.add_argument("--fps", type=float, help="frame rate of a frame-folder dst for video output (default 30)")
    p.add_argument("-o", "--output", required=True, help="output video")
    p.add_argument("--preset", default="cpu-quick", choices=list(PRESETS))
    p.add_argument("--iters", type=int, help="train until this many iterations in total")
    p.add_argument("--minutes", type=float, help="train this many minutes more")
    p.add_argument("--workdir", help="where facesets, model and report go (default: OUTPUT's name + .facelab)")
    p.set_defaults(func=_cmd_swap)


def _cmd_swap(a: argparse.Namespace) -> int:
    from facelab.swap import swap

    if a.iters is None and a.minutes is None:
        raise FacelabError("give --iters N or --minutes M")
    rep = swap(
        a.src, a.dst, a.output, a.preset, a.iters, a.minutes, a.workdir, log=lambda m: print(f"facelab: {m}"), fps=a.fps
    )
    print(f"video: {rep.output}\ncontact sheet: {rep.contact_sheet}\nreport: {rep.workdir}/report.md")
    return 0


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="show the synthetic-media tag facelab wrote into a video")
    p.add_argument("video")
    p.set_defaults(func=_cmd_inspect)


def _cmd_inspect(a: argparse.Namespace) -> int:
    from facelab.io.video import read_tag

    tag = read_tag(a.video)
    if tag is None:
        print(f"{a.video}: no facelab synthetic-media tag")
        return 1
    print(json.dumps(tag, indent=1))
    return 0


def _add_fid(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fid", help="FID and KID between two folders of images")
    p.add_argument("dir_a")
    p.add_argument("dir_b")
    p.add_argument(
        "--inception-weights", help="pytorch-fid .pth or TorchScript file (default: fid-helper's default_1.pt)"
    )
    p.add_argument("--resize", default="bilinear-tf", choices=["bilinear-tf", "clean"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_fid)


def _cmd_fid(a: argparse.Namespace) -> int:
    from facelab.evaluate.fid import fid_dirs, format_fid

    res = fid_dirs(a.dir_a, a.dir_b, weights=a.inception_weights, resize=a.resize)
    print(json.dumps(res, indent=1) if a.json else format_fid(res))
    return 0


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="measure a swap: FID/KID, identity, pose, expression, stability (or 'compare')")
    p.add_argument(
        "args",
        nargs="*",
        metavar="compare REPORT_A REPORT_B",
        help="'compare A B' prints two reports side by side; otherwise use the options below",
    )
    p.add_argument("--src", help="source faceset")
    p.add_argument("--dst", help="destination video")
    p.add_argument("--swapped", help="merged video")
    p.add_argument("-o", "--output", help="report folder")
    p.add_argument("--inception-weights", help="pytorch-fid .pth or TorchScript file (default: fid-helper's)")
    p.add_argument("--no-fid", action="store_true", help="skip FID/KID (the Inception network is slow on CPU)")
    p.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(a: argparse.Namespace) -> int:
    from facelab.evaluate.report import compare, evaluate, format_summary

    if a.args[:1] == ["compare"]:
        if len(a.args) != 3:
            raise FacelabError("usage: facelab evaluate compare REPORT_A REPORT_B")
        print(compare(a.args[1], a.args[2]))
        return 0
    missing = [n for n in ("src", "dst", "swapped", "output") if not getattr(a, n)]
    if missing or a.args:
        raise FacelabError(
            "usage: facelab evaluate --src FACESET --dst VIDEO --swapped VIDEO -o DIR, or facelab evaluate compare A B"
            + (f" (missing: {', '.join('--' + m for m in missing)})" if missing else "")
        )
    report = evaluate(a.src, a.dst, a.swapped, a.output, inception_weights=a.inception_weights, with_fid=not a.no_fid)
    print(format_summary(report))
    print(f"report: {a.output}/report.html")
    return 0


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a trained model's dst->src swap as a TorchScript file")
    p.add_argument("--model", required=True, help="model folder from 'facelab train'")
    p.add_argument("-o", "--output", required=True, help="TorchScript file to write (.pt)")
    p.set_defaults(func=_cmd_export)


def _cmd_export(a: argparse.Namespace) -> int:
    from facelab.export import export_model

    print(export_model(a.model, a.output).summary())
    return 0


# --- augment -----------------------------------------------------------------------------------------------------


def _add_augment(sub: argparse._SubParsersAction) -> None:
    from facelab.config import GanConfig

    p = sub.add_parser("augment", help="StyleGAN2-ADA on the src faceset; sample synthetic faces into it")
    ag = p.add_subparsers(dest="augment_cmd", required=True, metavar="{train,sample,export}")
    t = ag.add_parser("train", help="train a generator on a faceset (resumes if --out exists)")
    t.add_argument("--faceset", required=True, help="faceset to learn (only its real faces are used)")
    t.add_argument("--out", required=True, help="generator folder; an existing one is resumed")
    t.add_argument("--kimg", type=float, help="train until D has seen this many thousand real images in total")
    t.add_argument("--minutes", type=float, help="train for this many minutes")
    t.add_argument("--init", help="start from this generator folder's weights (fine-tuning, same architecture)")
    _add_config_options(t, GanConfig, "generator")
    t.set_defaults(func=_cmd_augment_train)
    s = ag.add_parser("sample", help="generate faces, keep those that are still the source, add them flagged")
    s.add_argument("--gan", required=True, help="generator folder or file ('facelab augment train' / 'export')")
    s.add_argument("--faceset", required=True, help="faceset to add the synthetic faces to (the generator's src)")
    s.add_argument("-n", type=int, required=True, help="faces this generator should have added (a re-run resumes)")
    s.add_argument("--truncation", type=float, default=0.7, help="psi; lower = more typical, less varied")
    s.add_argument("--min-identity", type=float, default=0.6, help="max dlib distance to the faceset's identity")
    s.add_argument("--dst", help="dst faceset: with --fill-* keep faces for the bins the src lacks relative to it")
    s.add_argument("--fill-poses", action="store_true", help="prefer yaw/pitch bins where the src is thin")
    s.add_argument("--fill-expressions", action="store_true", help="prefer mouth/smile bins where the src is thin")
    s.add_argument("--candidates", type=int, default=8, help="with --fill-*: draw up to n x this many images")
    s.add_argument("--seed", type=int, default=0, help="first latent seed")
    s.add_argument(
        "--confirm-detector",
        default="dlib-mmod",
        help="second detector that must also find each face ('none' to trust the first alone)",
    )
    s.set_defaults(func=_cmd_augment_sample)
    e = ag.add_parser("export", help="write the sampling generator alone to one .safetensors file")
    e.add_argument("--gan", required=True, help="generator folder from 'facelab augment train'")
    e.add_argument("--out", required=True, help="file to write (.safetensors)")
    e.add_argument("--fp16", action="store_true", help="store half-precision weights (half the size)")
    e.set_defaults(func=_cmd_augment_export)


def _cmd_augment_train(a: argparse.Namespace) -> int:
    import math

    from facelab.augment.trainer import GanTrainer
    from facelab.config import GanConfig

    if a.kimg is None and a.minutes is None:
        raise FacelabError("give --kimg N or --minutes M")
    given = {f.name for f in fields(GanConfig) if getattr(a, f.name) is not None}
    cfg = replace(GanConfig(), **{k: getattr(a, k) for k in given})
    trainer = GanTrainer(a.faceset, a.out, cfg, given, init_from=a.init)
    c = trainer.cfg
    print(
        f"StyleGAN2-ADA {c.cfg} @ {c.resolution} px, batch {c.batch}, gamma {c.gamma:g}, aug {c.aug}: "
        f"G {sum(p.numel() for p in trainer.G.parameters()):,} / D {sum(p.numel() for p in trainer.D.parameters()):,}"
        f" parameters; {len(trainer.reals)} real faces; starting at {trainer.kimg:.1f} kimg"
    )
    iters = math.ceil(a.kimg * 1000 / c.batch) if a.kimg is not None else None
    with _Progress("augment train", "it") as bar:
        start = trainer.iteration

        def show(s: dict) -> None:
            bar.update(s["iteration"] - start, (iters - start) if iters else None)
            if bar.bar is not None:
                bar.bar.set_postfix_str(f"G {s['G']:.3f} D {s['D']:.3f} p {s.get('ada_p', 0):.3f}")

        res = trainer.run(iters, a.minutes, progress=show)
    print(
        f"stopped at {trainer.kimg:.1f} kimg ({res.stopped}) after {res.seconds / 60:.1f} min; "
        f"checkpoint, preview.png, previews/ and losses.png in {a.out}"
    )
    return 0


def _cmd_augment_sample(a: argparse.Namespace) -> int:
    from facelab.augment.sample import sample_into_faceset
    from facelab.augment.trainer import generate_fn, load_generator

    g, _, gen_id = load_generator(a.gan)
    rep = sample_into_faceset(
        generate_fn(g),
        a.faceset,
        a.n,
        generator_id=gen_id,
        truncation=a.truncation,
        min_identity=a.min_identity,
        dst_faceset=a.dst,
        fill_poses=a.fill_poses,
        fill_expressions=a.fill_expressions,
        candidates=a.candidates,
        first_seed=a.seed,
        confirm=None if a.confirm_detector == "none" else a.confirm_detector,
    )
    print(rep.summary())
    return 0


def _cmd_augment_export(a: argparse.Namespace) -> int:
    from facelab.augment.trainer import export_generator

    size = export_generator(a.gan, a.out, half=a.fp16)
    print(f"wrote {a.out} ({size / 2**20:.1f} MiB); sample from it with 'facelab augment sample --gan {a.out}'")
    return 0


# --- plumbing ----------------------------------------------------------------------------------------------------


class _Progress:
    """tqdm bar with rate and ETA on stderr; silent when stderr is not a terminal unless FACELAB_PROGRESS=1."""

    def __init__(self, desc: str, unit: str) -> None:
        self.desc, self.unit, self.bar = desc, unit, None

    def __enter__(self) -> _Progress:
        return self

    def update(self, done: int, total: int | None) -> None:
        if self.bar is None:
            from tqdm import tqdm

            disable = not (sys.stderr.isatty() or os.environ.get("FACELAB_PROGRESS") == "1")
            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, disable=disable, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="facelab", description="Face swapping for video: extract, train, merge, measure.")
    p.add_argument("--version", action="version", version=f"facelab {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = p.add_subparsers(
        dest="command",
        required=True,
        metavar="{extract,detect,faceset,train,augment,merge,swap,inspect,evaluate,fid,export}",
    )
    _add_extract(sub)
    _add_detect(sub)
    _add_faceset(sub)
    _add_train(sub)
    _add_augment(sub)
    _add_merge(sub)
    _add_swap(sub)
    _add_inspect(sub)
    _add_fid(sub)
    _add_evaluate(sub)
    _add_export(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):  # `facelab inspect x | head`: stop quietly like other CLI tools, no traceback
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    a = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO, format="facelab: %(message)s")
    _quiet_native_logs()
    try:
        return a.func(a)
    except FacelabError as e:
        if a.verbose:
            raise
        print(f"facelab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("facelab: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except ValueError as e:  # bad option values from the stages (unknown detector, face type, ...)
        if a.verbose:
            raise
        print(f"facelab: error: {e}", file=sys.stderr)
        return 2


def _quiet_native_logs() -> None:
    import warnings

    warnings.filterwarnings("ignore", message=".*GetPrototype.*")
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass


if __name__ == "__main__":
    sys.exit(main())
