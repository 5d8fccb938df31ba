"""Training samples: faces of a faceset re-cropped to the model's face type, augmented per DFL's recipe.

Every sample is a pure function of ``(seed, k, side)`` where ``k`` is the global sample counter
(``iteration * batch + slot``): which face it shows and every random choice in its augmentation. So data loading
needs no saved state for an exact resume, any number of workers gives the same batches, and torchrun ranks
take disjoint slots of the same global batch.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from facelab.config import TrainConfig
from facelab.errors import FacesetError
from facelab.faceset.meta import FaceMeta, decode_xseg_mask
from facelab.faceset.store import face_files, read_face
from facelab.geometry.facetype import PADDING, FaceType, transform_matrix
from facelab.geometry.openness import openness_bin
from facelab.geometry.umeyama import apply_affine
from facelab.imaging import color, warp
from facelab.imaging.masks import eyes_mouth_mask, hull_mask, polygon_mask

log = logging.getLogger(__name__)


@dataclass
class FaceBank:
    """One or more facesets held in memory at the model's resolution and face type."""

    images: np.ndarray  # (N, R, R, 3) uint8 RGB
    masks: np.ndarray  # (N, R, R) uint8 0/255 landmark-hull masks
    em_masks: np.ndarray  # (N, R, R) uint8 eyes+mouth masks
    yaws: np.ndarray  # (N,) degrees
    names: list[str]  # unique; faces of a pooled faceset whose file names clash are prefixed with their folder
    synthetic: int = 0  # how many of the faces are generated (``facelab augment sample``, renders)
    expressions: np.ndarray | None = None  # (N,) eye/mouth openness bins (``openness_bin``); None = all one bin
    is_synthetic: np.ndarray | None = None  # (N,) bool, which faces are generated; None = none (``synthetic`` kept)

    def __post_init__(self) -> None:
        if self.is_synthetic is None:
            self.is_synthetic = np.zeros(len(self.names), bool)
        else:
            self.is_synthetic = np.asarray(self.is_synthetic, bool)
            self.synthetic = int(self.is_synthetic.sum())

    def __len__(self) -> int:
        return len(self.names)


Folders = str | Path | Sequence[str | Path]


MASK_SOURCES = ("hull", "xseg")  # TrainConfig.mask_source


def load_bank(
    folders: Folders,
    face_type: FaceType | str,
    resolution: int,
    synthetic: bool = True,
    mask_source: str = "hull",
) -> FaceBank:
    """Read every face of ``folders`` (one faceset folder or several, pooled into one bank; generated faces only
    if ``synthetic``), re-crop it to ``face_type`` at ``resolution`` (cubic), and build its masks (``mask_source``:
    see ``face_mask``; "xseg" needs a stored mask on every face)."""
    if mask_source not in MASK_SOURCES:
        raise FacesetError(f"mask_source must be one of {', '.join(MASK_SOURCES)}, not {mask_source!r}")
    face_type = FaceType.parse(face_type) if isinstance(face_type, str) else face_type
    folders = [Path(folders)] if isinstance(folders, str | Path) else [Path(f) for f in folders]
    if not folders:
        raise FacesetError("no faceset folder given")
    seen: dict[Path, Path] = {}
    for folder in folders:
        key = folder.resolve()
        if key in seen:
            raise FacesetError(f"{folder}: faceset given twice (as {seen[key]})")
        seen[key] = folder
    faces: list[tuple[Path, Path, np.ndarray, FaceMeta]] = []  # (folder, path, image, meta)
    for folder in folders:
        files = face_files(folder)
        if not files:
            raise FacesetError(f"{folder}: faceset is empty (run 'facelab extract' first)")
        faces += [(folder, path, *read_face(path)) for path in files]
    if not synthetic:
        faces = [f for f in faces if not f[3].synthetic]
        if not faces:
            where = ", ".join(str(f) for f in folders)
            raise FacesetError(f"{where}: every face is synthetic and synthetic faces are excluded")
    if mask_source == "xseg":
        _require_xseg(folders, [(folder, path, meta) for folder, path, _, meta in faces])
    n = len(faces)
    images = np.empty((n, resolution, resolution, 3), np.uint8)
    masks = np.empty((n, resolution, resolution), np.uint8)
    em = np.empty((n, resolution, resolution), np.uint8)
    yaws = np.empty(n, np.float32)
    expressions = np.empty(n, np.int64)
    flags = np.array([bool(meta.synthetic) for _, _, _, meta in faces], bool)
    narrower: dict[Path, int] = {}
    for i, (folder, path, img, meta) in enumerate(faces):
        if min(img.shape[:2]) < resolution // 2:
            log.warning("%s: %d px face is upscaled more than 2x to the model's %d px", path, img.shape[0], resolution)
        if PADDING[FaceType.parse(meta.face_type)] < PADDING[face_type]:
            narrower[folder] = narrower.get(folder, 0) + 1
        images[i], m = recrop(img, meta, face_type, resolution)
        lmk = apply_affine(m, meta.landmarks)
        try:
            masks[i] = np.round(face_mask(meta, m, resolution, mask_source) * 255)
        except FacesetError as e:  # a damaged stored mask: name the face
            raise FacesetError(f"{path}: {e}") from e
        em[i] = eyes_mouth_mask((resolution, resolution), lmk) * 255
        yaws[i] = meta.yaw
        expressions[i] = openness_bin(meta.landmarks)
    for folder, count in narrower.items():
        log.warning(
            "%s: %d faces were extracted with a tighter face type than the model's %s; their crops have "
            "empty borders (re-extract with --face-type %s or wider)",
            folder,
            count,
            face_type.value,
            face_type.value,
        )
    names = _unique_names(folders, [(folder, path) for folder, path, _, _ in faces])
    return FaceBank(images, masks, em, yaws, names, int(flags.sum()), expressions, flags)


def _unique_names(folders: list[Path], faces: list[tuple[Path, Path]]) -> list[str]:
    """Each face's file name, prefixed with its folder's (``renders/0001.jpg``) where the name occurs in more than
    one folder; with the whole folder path where the folders' own names clash too."""
    counts = Counter(path.name for _, path in faces)
    short = Counter(f.name for f in folders)
    label = {f: f.name if short[f.name] == 1 and f.name else str(f) for f in folders}
    return [f"{label[folder]}/{path.name}" if counts[path.name] > 1 else path.name for folder, path in faces]


def recrop(image: np.ndarray, meta: FaceMeta, face_type: FaceType, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """The face re-framed from its aligned crop to ``face_type`` at ``resolution``, and the 2x3 aligned->new matrix."""
    m = transform_matrix(meta.landmarks, resolution, face_type)
    out = cv2.warpAffine(image, m, (resolution, resolution), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return out, m


def _require_xseg(folders: list[Path], faces: list[tuple[Path, Path, FaceMeta]]) -> None:
    """``--mask-source xseg``: one line naming the first faceset with faces that have no stored mask."""
    for folder in folders:
        lacking = [path for f, path, meta in faces if f == folder and meta.xseg_mask is None]
        if lacking:
            total = sum(f == folder for f, _, _ in faces)
            raise FacesetError(
                f"{folder}: {len(lacking)} of {total} faces have no stored xseg mask (first: {lacking[0].name}); "
                f"--mask-source xseg needs one on every face: run 'facelab mask apply MASK_MODEL {folder}'"
            )


def face_mask(meta: FaceMeta, m: np.ndarray, resolution: int, source: str = "hull") -> np.ndarray:
    """The face's training mask in the re-cropped frame, float32 in [0, 1]. ``source`` "hull": its stored
    include/exclude polygons if it has any (hand-labelled), else the landmark hull; "xseg": its stored mask
    (``FaceMeta.xseg_mask``, from ``facelab mask apply``), which covers the aligned image at <= 256 px."""
    shape = (resolution, resolution)
    if source == "xseg":
        # decoded at the aligned size, so ``m`` (aligned px -> re-crop px) applies as it does to the landmarks
        aligned = decode_xseg_mask(meta.xseg_mask, meta.size).astype(np.float32) / 255.0
        out = cv2.warpAffine(aligned, m, shape, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        return np.clip(out, 0.0, 1.0)
    if any(p.get("type") == "include" for p in meta.masks):
        moved = [{**p, "points": apply_affine(m, np.asarray(p["points"], np.float64))} for p in meta.masks]
        return polygon_mask(shape, moved)
    return hull_mask(shape, apply_affine(m, meta.landmarks))


class PairDataset(Dataset):
    """Sample ``k`` -> one augmented src face and one augmented dst face, as float32 CHW tensors in [0, 1]."""

    def __init__(self, src: FaceBank, dst: FaceBank, cfg: TrainConfig) -> None:
        self.src, self.dst, self.cfg = src, dst, cfg
        self._bins = {side: _balanced_bins(bank, cfg) for side, bank in (("src", src), ("dst", dst))}
        # per-face draw weights where synthetic faces are weighted apart from real ones; None = the plain draws
        self._weights = {side: _face_weights(bank, cfg) for side, bank in (("src", src), ("dst", dst))}
        self._bin_cdfs = {
            side: None if w is None or self._bins[side] is None else [np.cumsum(w[m]) for m in self._bins[side]]
            for side, w in self._weights.items()
        }
        self._epoch: dict[str, tuple[int, np.ndarray]] = {}  # side -> (epoch, its weighted draws), the latest one

    def __len__(self) -> int:  # samples are drawn by counter, not by index; this bounds nothing
        return 2**62

    def __getitem__(self, key: int | tuple[int, bool]) -> dict[str, torch.Tensor]:
        """``key``: a sample counter, or (counter, whether random warp is on) from ``CounterBatchSampler``."""
        k, warp_on = key if isinstance(key, tuple) else (key, self.cfg.random_warp)
        out = {}
        for side_id, (side, bank, flip_ok) in enumerate(
            (("src", self.src, self.cfg.random_src_flip), ("dst", self.dst, self.cfg.random_dst_flip))
        ):
            rng = np.random.default_rng([self.cfg.seed, k, side_id])
            i = self._pick(side, bank, k, rng)
            img = bank.images[i].astype(np.float32) / 255.0
            if side == "src" and self.cfg.ct_mode != "none":
                ref = self.dst.images[rng.integers(len(self.dst))].astype(np.float32) / 255.0
                # training uses DFL's cheaper 10 x 5 sliced-OT setting; merge uses 10 x 30
                opts = {"steps": 10, "directions": 5} if self.cfg.ct_mode == "sot" else {}
                img = color.transfer(self.cfg.ct_mode, img, ref, rng=rng, **opts)
            sample = augment(img, bank.masks[i], bank.em_masks[i], self.cfg, flip_ok, rng, random_warp=warp_on)
            out.update({f"{side}_{name}": t for name, t in sample.items()})
        return out

    def _pick(self, side: str, bank: FaceBank, k: int, rng: np.random.Generator) -> int:
        bins, weights = self._bins[side], self._weights[side]
        if bins is not None:  # balanced sampling: a random non-empty bin, then a random face in it
            b = rng.integers(len(bins))
            members = bins[b]
            if weights is None:
                return int(members[rng.integers(len(members))])
            cdf = self._bin_cdfs[side][b]  # synthetic faces weighted within their bin; bins stay equally likely
            j = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
            return int(members[min(j, len(members) - 1)])
        n = len(bank)
        epoch, pos = divmod(k, n)  # each face once per epoch (weighted: its share of the epoch), in a seeded order
        if weights is None:
            return int(np.random.default_rng([self.cfg.seed, epoch, 7 + (side == "dst")]).permutation(n)[pos])
        if self._epoch.get(side, (None,))[0] != epoch:
            epoch_rng = np.random.default_rng([self.cfg.seed, epoch, 9 + (side == "dst")])
            self._epoch[side] = (epoch, _weighted_epoch(weights, epoch_rng))
        return int(self._epoch[side][1][pos])


def _face_weights(bank: FaceBank, cfg: TrainConfig) -> np.ndarray | None:
    """Each face's draw weight (1 real, ``synthetic_weight`` synthetic), or None when all weigh the same: then
    draws are exactly the unweighted ones."""
    w = float(cfg.synthetic_weight)
    flags = bank.is_synthetic
    if w == 1.0 or flags is None or not flags.any() or flags.all():
        return None
    return np.where(flags, w, 1.0)


def _weighted_epoch(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An epoch of ``len(weights)`` draws in a seeded order, face i in ~``n * w_i / sum(w)`` of them: systematic
    sampling over the faces grouped by weight (seeded order within a group), so each face gets the floor or ceil of
    its share and each group (real, synthetic) its share to within one draw, not a multinomial's spread."""
    n = len(weights)
    order = rng.permutation(n)
    order = order[np.argsort(weights[order], kind="stable")]
    cdf = np.cumsum(weights[order])
    at = (np.arange(n) + rng.random()) * (cdf[-1] / n)
    draws = order[np.minimum(np.searchsorted(cdf, at, side="right"), n - 1)]
    return draws[rng.permutation(n)]


def _balanced_bins(bank: FaceBank, cfg: TrainConfig) -> list[np.ndarray] | None:
    """Face indices grouped for balanced sampling, or None for plain epochs: by yaw (``uniform_yaw``, DFL's 128
    equal bins over +-1.2 rad), by eye/mouth openness (``uniform_expression``), or by both at once; empty bins
    dropped, so a pose or expression the faceset lacks is not drawn."""
    if not (cfg.uniform_yaw or cfg.uniform_expression):
        return None
    n = len(bank)
    yaw = _yaw_bin(bank.yaws) if cfg.uniform_yaw else np.zeros(n, np.int64)
    expr = bank.expressions if cfg.uniform_expression and bank.expressions is not None else np.zeros(n, np.int64)
    key = yaw * 9 + expr  # 9 openness bins
    return [np.flatnonzero(key == k) for k in np.unique(key)]


def _yaw_bin(yaws: np.ndarray, nbins: int = 128, limit: float = 68.75) -> np.ndarray:
    edges = np.linspace(-limit, limit, nbins + 1)
    return np.clip(np.digitize(yaws, edges) - 1, 0, nbins - 1)


def augment(
    img: np.ndarray,
    mask: np.ndarray,
    em: np.ndarray,
    cfg: TrainConfig,
    flip_ok: bool,
    rng: np.random.Generator,
    random_warp: bool | None = None,
) -> dict[str, torch.Tensor]:
    """DFL's sample recipe: colour (HSV) jitter -> one random affine + flip for all outputs -> random grid warp
    (``random_warp``, default the config's) and degradations on the network input only."""
    size = img.shape[0]
    if cfg.random_hsv_power > 0:
        img = warp.random_hsv(img, cfg.random_hsv_power, rng)
    p = warp.gen_warp_params(size, rng, flip_prob=0.4 if flip_ok else 0.0)
    target = warp.apply_warp(img, p, warp=False, transform=True, flip=True)
    warped = warp.apply_warp(
        img, p, warp=cfg.random_warp if random_warp is None else random_warp, transform=True, flip=True
    )
    m = mask.astype(np.float32) / 255.0
    e = em.astype(np.float32) / 255.0
    kw = {
        "warp": False,
        "transform": True,
        "flip": True,
        "border": cv2.BORDER_CONSTANT,
        "interpolation": cv2.INTER_LINEAR,
    }
    m = warp.apply_warp(m, p, **kw)
    e = warp.apply_warp(e, p, **kw)
    e = e / e.max() if e.max() > 0 else e
    if cfg.degrade_prob > 0:
        p_ = cfg.degrade_prob
        warped = warp.random_degrade(warped, rng, blur=p_, noise=p_, jpeg=p_, downsample=p_)
    return {
        "warped": _chw(warped),
        "target": _chw(target),
        "mask": torch.from_numpy(np.ascontiguousarray(np.clip(m, 0, 1)))[None],
        "em": torch.from_numpy(np.ascontiguousarray(np.clip(e, 0, 1) * (m > 0)))[None],
    }


def _chw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.clip(img, 0, 1).transpose(2, 0, 1), dtype=np.float32))


class CounterBatchSampler(Sampler[list[tuple[int, bool]]]):
    """Batches of global sample counters, starting at ``start_iter``: iteration i, rank r of R takes
    ``i * batch + r * (batch // R) + [0, batch // R)``, each with whether random warp is on: off from iteration
    ``warp_until`` on (None = on; the trainer sets it while batches are drawn)."""

    def __init__(self, batch: int, start_iter: int = 0, rank: int = 0, world: int = 1) -> None:
        if batch % world:
            raise ValueError(f"batch {batch} is not divisible by the {world} torchrun processes")
        self.batch, self.it, self.rank, self.local = batch, start_iter, rank, batch // world
        self.warp_until: int | None = None

    def __iter__(self):
        it = self.it
        while True:
            base = it * self.batch + self.rank * self.local
            warp = self.warp_until is None or it < self.warp_until
            yield [(k, warp) for k in range(base, base + self.local)]
            it += 1

    def __len__(self) -> int:
        return 2**62
