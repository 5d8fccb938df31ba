"""Mask fine-tuning from labels: a mask model fine-tuned on N faces of one video, each carrying the same kind of
exclude polygon, reproduces that rule on M other faces of the video (issue 17, "from labels").

The rules (``--rule``): include = the outline of the face (the convex hull of the 68 points, brows raised as the
landmark hull raises them); exclude = "glasses" (a band from temple to temple, from the brows to below the eyes,
where frames and lenses sit) or "mouth" (the outer lips grown by a quarter, as a hand or a microphone). The
polygons are written, in aligned-image pixels as the studio's editor writes them, into copies of N evenly spaced
faces; ``facelab mask train --faceset COPIES --init GENERIC --minutes M`` fine-tunes a generic model on them; the
binarised prediction (``mask apply``'s threshold) on M other faces of the video, evenly spaced, is compared with
the same rule drawn on them (IoU over the whole 256 px crop). Beside it: the plain outline (no exclude) and the
generic model before fine-tuning, against the same truth.

The video is one the generic model never trained on (default: P3, who wears glasses; the mask benchmark's test
set holds 21 of its frames for the generic model's own test). Everything is kept under
bench-output/mask/labels_<stem>/; rerun to reuse it (delete ``tuned`` to fine-tune again).

Usage: .venv/bin/python benchmarks/mask_labels.py --init bench-output/mask/generic [--video videos/person_p3_lp_d9.mp4]
                                                  [--rule glasses|mouth] [--train 20] [--test 200] [--minutes 5]
Acceptance (issue 17): IoU >= 0.90 on the M other faces.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

if __package__ in (None, ""):  # run as `python benchmarks/mask_labels.py`: make `benchmarks` importable
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks.common import REPO, data_parser, fmt, print_table, require_data, verdict, write_json  # noqa: E402
from benchmarks.mask_quality import iou  # noqa: E402
from facelab.config import ExtractConfig, MaskConfig  # noqa: E402
from facelab.extract.pipeline import SUMMARY_FILE, extract  # noqa: E402
from facelab.faceset.meta import FaceMeta  # noqa: E402
from facelab.faceset.store import face_files, read_face, update_meta  # noqa: E402
from facelab.geometry.umeyama import apply_affine  # noqa: E402
from facelab.imaging.masks import expanded_brows, polygon_mask  # noqa: E402
from facelab.mask.samples import crop_hull, recrop  # noqa: E402
from facelab.models.xseg import RESOLUTION, load_mask_model  # noqa: E402

WORK = REPO / "bench-output" / "mask"
LIPS, EYES, BROWS = slice(48, 60), slice(36, 48), slice(17, 27)
LIP_GROWTH = 1.25  # the mouth's exclude: the outer lips scaled about their centre
GLASSES_SPAN = (0.3, 0.9)  # the glasses' exclude: from this far below the brows to this far below the eyes, in
# brow-to-eye distances (frames sit on the brow line's lower edge, lenses reach below the lower lids)


def outline(landmarks: np.ndarray) -> np.ndarray:
    """The face outline a labeller draws: the convex hull of the 68 points, brows raised as the landmark hull's."""
    return cv2.convexHull(expanded_brows(np.asarray(landmarks, np.float64)).astype(np.float32))[:, 0]


def exclude_region(landmarks: np.ndarray, rule: str) -> np.ndarray:
    """The exclude polygon of ``rule``: "mouth" (the outer lips grown by a quarter, a hand or a microphone over
    the mouth) or "glasses" (a band from temple to temple, from the brows to below the eyes, where frames and
    lenses sit)."""
    lm = np.asarray(landmarks, np.float64)
    if rule == "mouth":
        lips = lm[LIPS]
        centre = lips.mean(0)
        pts = (lips - centre) * LIP_GROWTH + centre
    elif rule == "glasses":
        step = lm[EYES].mean(0) - lm[BROWS].mean(0)
        top, bottom = GLASSES_SPAN
        pts = np.concatenate([lm[BROWS] + top * step, lm[EYES] + bottom * step, lm[[0, 16]], lm[[1, 15]]])
    else:
        raise ValueError(f"unknown rule {rule!r}")
    return cv2.convexHull(pts.astype(np.float32))[:, 0]


def rule_polygons(landmarks: np.ndarray, rule: str) -> list[dict]:
    """The labeller's polygons for one face, in the landmarks' pixels (exclude wins, as DFL)."""
    return [
        {"type": "include", "points": outline(landmarks).tolist()},
        {"type": "exclude", "points": exclude_region(landmarks, rule).tolist()},
    ]


def crops_and_truth(files: list[Path], rule: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(256 px whole-face crops, the rule's label in them, the outline alone in them, as bool masks; the landmark
    hulls in them, a hull-prior mask model's 4th input)."""
    imgs, truth, whole, hulls = [], [], [], []
    for path in files:
        img, meta = read_face(path)
        crop, m = recrop(img, meta)
        hulls.append(crop_hull(meta, m))
        polys = [{**p, "points": apply_affine(m, np.asarray(p["points"]))} for p in rule_polygons(meta.landmarks, rule)]
        imgs.append(crop)
        truth.append(polygon_mask((RESOLUTION, RESOLUTION), polys) > 0.5)
        whole.append(polygon_mask((RESOLUTION, RESOLUTION), polys[:1]) > 0.5)
    return np.stack(imgs), np.stack(truth), np.stack(whole), np.stack(hulls)


def label_copies(files: list[Path], out: Path, rule: str) -> None:
    """Copies of ``files`` carrying the rule's polygons (their pixels untouched), written once."""
    if out.exists():
        return
    part = out.with_name(out.name + ".partial")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    for path in files:
        shutil.copy2(path, part / path.name)
        meta: FaceMeta = read_face(path)[1]
        update_meta(part / path.name, masks=rule_polygons(meta.landmarks, rule))
    part.rename(out)


def main() -> int:
    ap = data_parser(__doc__)
    ap.add_argument("--init", type=Path, required=True, help="the generic mask model to fine-tune")
    ap.add_argument("--rule", choices=("glasses", "mouth"), default="glasses", help="what the labels exclude")
    ap.add_argument("--video", default="videos/person_p3_lp_d9.mp4", help="relative to the data folder")
    ap.add_argument("--train", type=int, default=20, help="labelled faces")
    ap.add_argument("--test", type=int, default=200, help="other faces of the video the rule is checked on")
    ap.add_argument("--minutes", type=float, default=5.0, help="fine-tuning minutes")
    a = ap.parse_args()
    data = require_data(a.data, a.video)
    work = WORK / f"labels_{Path(a.video).stem}_{a.rule}"
    faces = work / "faces"
    if not (faces / SUMMARY_FILE).is_file():
        extract(data / a.video, faces, ExtractConfig(face_type="whole_face", size=256, max_faces=1))
    files = face_files(faces)
    if len(files) < a.train + a.test:
        raise SystemExit(f"{a.video}: {len(files)} faces, fewer than --train {a.train} + --test {a.test}")
    train_idx = set(np.linspace(0, len(files) - 1, a.train).round().astype(int).tolist())
    rest = [f for i, f in enumerate(files) if i not in train_idx]
    test = [rest[i] for i in np.linspace(0, len(rest) - 1, a.test).round().astype(int)]
    label_copies([files[i] for i in sorted(train_idx)], work / "labelled", a.rule)
    tuned = work / "tuned"
    if not (tuned / "checkpoint").is_dir():
        cmd = [sys.executable, "-m", "facelab", "mask", "train", "--faceset", str(work / "labelled"), "--out",
               str(tuned), "--init", str(a.init), "--minutes", str(a.minutes)]  # fmt: skip
        subprocess.run(cmd, check=True)
    imgs, truth, whole, hulls = crops_and_truth(test, a.rule)
    threshold = MaskConfig().threshold
    figures: dict = {
        "rule": a.rule,
        "video": a.video,
        "train_faces": a.train,
        "test_faces": len(test),
        "minutes": a.minutes,
    }
    figures["outline_iou"] = float(iou(whole, truth).mean())
    rows = [["face outline (no exclude)", fmt(figures["outline_iou"], 3), "-"]]
    for name, path in (("generic (--init)", a.init), (f"fine-tuned on {a.train} labelled faces", tuned)):
        mm = load_mask_model(path)
        pred = mm.predict(imgs, batch=16, hulls=hulls if mm.hull_prior else None) >= threshold
        value = float(iou(pred, truth).mean())
        figures[name] = {"iou": value, "iter": mm.iteration}
        rows.append([f"{name} (iter {mm.iteration})", fmt(value, 3), verdict(value >= 0.90) if path == tuned else "-"])
    share = 1 - truth.sum((1, 2)) / np.maximum(whole.sum((1, 2)), 1)
    print_table(
        f"mask rule '{a.rule} excluded' learned from {a.train} labelled faces of {a.video}, checked on {len(test)} others",
        ["mask", "IoU with the rule", "IoU >= 0.90"],
        rows,
        notes=[
            f"the excluded {a.rule} region is {share.mean():.0%} of the outline on average; fine-tuned {a.minutes:g} min"
        ],
    )
    write_json(a.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
