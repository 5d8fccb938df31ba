"""``facelab augment render|train|sample|export``: 3D re-rendering of src faces; StyleGAN2-ADA on the src faceset,
sampled into it."""

from __future__ import annotations

import argparse

from facelab.cli.common import Subparsers, add_config_options, config_from, given_options
from facelab.config import GanConfig, RenderConfig, SampleConfig
from facelab.errors import FacelabError
from facelab.runs.progress import ProgressBar


def add_augment(sub: Subparsers) -> None:
    p = sub.add_parser("augment", help="new faces of the src person: 3D re-rendering, or a StyleGAN2-ADA generator")
    ag = p.add_subparsers(dest="augment_cmd", required=True, metavar="{render,train,sample,export}")
    _add_render(ag)
    _add_train(ag)
    _add_sample(ag)
    _add_export(ag)


def _add_render(ag: Subparsers) -> None:
    d = RenderConfig()
    r = ag.add_parser("render", help="re-render src faces in 3D with new poses and expressions (flagged synthetic)")
    r.add_argument("--faceset", required=True, help="src faceset (only read)")
    r.add_argument("--out", required=True, help="folder for the renders (a re-run resumes)")
    r.add_argument("--yaw", type=_angles, default=[], help="yaw changes in degrees, e.g. 15,30,-30 (+-45 at most)")
    r.add_argument("--pitch", type=_angles, default=[], help="pitch changes in degrees, e.g. 10,-10")
    r.add_argument(
        "--expression",
        action="append",
        default=[],
        type=_expression,
        help="smile | mouth-open | eyes-closed, optionally :STRENGTH in [0, 1] (repeatable)",
    )
    r.add_argument("--fill", action="store_true", help="render into the pose/expression bins the src lacks vs --dst")
    r.add_argument("--dst", help="dst faceset for --fill")
    r.add_argument("-n", type=int, help="at most N renders in all (with --fill: faces each thin bin should hold)")
    r.add_argument("--min-identity", type=float, default=d.min_identity, help="max dlib distance to the src identity")
    r.add_argument("--preview", help="write a sheet of sources and their renders to this PNG")
    r.set_defaults(func=_cmd_render)


def _add_train(ag: Subparsers) -> None:
    t = ag.add_parser("train", help="train a generator on a faceset (resumes if --out exists)")
    t.add_argument("--faceset", required=True, help="faceset to learn (only its real faces are used)")
    t.add_argument("--out", required=True, help="generator folder; an existing one is resumed")
    t.add_argument("--kimg", type=float, help="train until D has seen this many thousand real images in total")
    t.add_argument("--minutes", type=float, help="train for this many minutes")
    t.add_argument("--init", help="start from this generator folder's weights (fine-tuning, same architecture)")
    add_config_options(t, GanConfig, "generator")
    t.set_defaults(func=_cmd_train)


def _add_sample(ag: Subparsers) -> None:
    d = SampleConfig()
    s = ag.add_parser("sample", help="generate faces, keep those that are still the source, add them flagged")
    s.add_argument("--gan", required=True, help="generator folder or file ('facelab augment train' / 'export')")
    s.add_argument("--faceset", required=True, help="faceset to add the synthetic faces to (the generator's src)")
    s.add_argument("-n", type=int, required=True, help="faces this generator should have added (a re-run resumes)")
    s.add_argument("--truncation", type=float, default=d.truncation, help="psi; lower = more typical, less varied")
    s.add_argument(
        "--min-identity", type=float, default=d.min_identity, help="max dlib distance to the faceset's identity"
    )
    s.add_argument("--dst", help="dst faceset: with --fill-* keep faces for the bins the src lacks relative to it")
    s.add_argument("--fill-poses", action="store_true", help="prefer yaw/pitch bins where the src is thin")
    s.add_argument("--fill-expressions", action="store_true", help="prefer mouth/smile bins where the src is thin")
    s.add_argument(
        "--candidates", type=int, default=d.candidates, help="with --fill-*: draw up to n x this many images"
    )
    s.add_argument("--seed", type=int, default=d.seed, help="first latent seed")
    s.add_argument(
        "--snapshot",
        choices=("best", "latest"),
        default=d.snapshot,
        help="of a generator folder: the probed snapshot that passed most (if any) or the latest checkpoint",
    )
    s.add_argument(
        "--confirm-detector",
        default=d.confirm_detector,
        help="second detector that must also find each face ('none' to trust the first alone)",
    )
    s.set_defaults(func=_cmd_sample)


def _add_export(ag: Subparsers) -> None:
    e = ag.add_parser("export", help="write the sampling generator alone to one .safetensors file")
    e.add_argument("--gan", required=True, help="generator folder from 'facelab augment train'")
    e.add_argument("--out", required=True, help="file to write (.safetensors)")
    e.add_argument("--fp16", action="store_true", help="store half-precision weights (half the size)")
    e.add_argument("--snapshot", choices=("best", "latest"), default=SampleConfig.snapshot,
                   help="the probed snapshot that passed most (if any) or the latest checkpoint")  # fmt: skip
    e.set_defaults(func=_cmd_export)


def _angles(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of degrees") from None


def _expression(text: str) -> tuple[str, float]:
    name, _, strength = text.partition(":")
    try:
        return name, float(strength) if strength else 1.0
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: strength must be a number in [0, 1]") from None


def _cmd_render(a: argparse.Namespace) -> int:
    from facelab.augment.render.draw import Edit
    from facelab.augment.render.stage import render_faces

    # each pose and each expression is its own render; an axis not given is not changed
    poses = [Edit(y, p) for y in a.yaw or [0.0] for p in a.pitch or [0.0]] if a.yaw or a.pitch else []
    edits = poses + [Edit(expressions=(e,)) for e in a.expression]
    cfg = RenderConfig(min_identity=a.min_identity)
    with ProgressBar("augment render", "render") as bar:
        res = render_faces(
            a.faceset, a.out, edits, cfg, n=a.n, dst=a.dst, fill=a.fill, preview=a.preview, progress=bar.update
        )
    print(res.summary())
    return 0


def _cmd_train(a: argparse.Namespace) -> int:
    from facelab.augment.stage import train_generator

    if a.kimg is None and a.minutes is None:
        raise FacelabError("give --kimg N or --minutes M")
    opts = given_options(a, GanConfig)
    with ProgressBar("augment train", "it") as bar:
        res = train_generator(
            a.faceset, a.out, GanConfig(**opts), set(opts), a.kimg, a.minutes, a.init, bar.update, log=print
        )
    print(res.summary())
    return 0


def _cmd_sample(a: argparse.Namespace) -> int:
    from facelab.augment.stage import sample_faces

    print(sample_faces(a.gan, a.faceset, a.n, config_from(a, SampleConfig), dst=a.dst).summary())
    return 0


def _cmd_export(a: argparse.Namespace) -> int:
    from facelab.augment.stage import export_sampler

    print(export_sampler(a.gan, a.out, half=a.fp16, snapshot=a.snapshot).summary())
    return 0
