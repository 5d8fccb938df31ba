"""``facelab mask train``: the mask network trained on ``RunLoop`` like the swap and generator trainers (limits,
atomic safetensors checkpoints, exact resume, TensorBoard, preview grid, loss curve).

Loss: sigmoid cross-entropy (DFL's) + ``dice_weight`` x soft dice. Optimiser: Adam (default) or DFL's RMSprop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from facelab import __version__
from facelab.config import MaskConfig
from facelab.errors import FacelabError
from facelab.io import checkpoint
from facelab.io.atomic import ensure_writable_dir, write_atomic
from facelab.io.paths import refuse_overlap
from facelab.mask.samples import MaskBank, load_mask_bank, make_sample
from facelab.models.xseg import build_net, config_from_state, count_params, parse_widths
from facelab.runs.guard import finite_or_raise
from facelab.runs.loop import Dist, RunLoop, Schedule
from facelab.runs.preview import preview_grid_png
from facelab.runs.resume import resumed

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
RESUMABLE = {"workers", "preview_every", "autosave_minutes", "autosave_iters", "apply_batch", "threshold"}
PREVIEW_SAMPLES = 4


def mask_loss(logits: torch.Tensor, target: torch.Tensor, dice_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Sigmoid cross-entropy + ``dice_weight`` x (1 - soft dice over each image); returns (loss, its parts)."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    parts = {"bce": float(bce.detach())}
    loss = bce
    if dice_weight > 0:
        p = torch.sigmoid(logits).flatten(1)
        t = target.flatten(1)
        dice = 1 - ((2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)).mean()
        parts["dice"] = float(dice.detach())
        loss = loss + dice_weight * dice
    return loss, parts


def build_optimizer(params: Any, cfg: MaskConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr)
    raise FacelabError(f"optimizer must be adam or rmsprop, not {cfg.optimizer!r}")


def resolve_run_config(folder: Path, cfg: MaskConfig, given: set[str]) -> tuple[MaskConfig, bool]:
    """A new folder takes ``cfg``; an existing one keeps its own with the resumable options in ``given``
    overridden; any other difference is refused."""
    path = folder / CONFIG_FILE
    if not path.exists():
        parse_widths(cfg.widths)
        return cfg, False
    try:
        old = config_from_state(json.loads(path.read_text()), path)
    except (OSError, ValueError) as e:
        raise FacelabError(f"{path}: not a facelab mask config ({e})") from e
    return resumed(old, cfg, given, RESUMABLE, folder, "--out"), True


class _Samples(torch.utils.data.Dataset):
    def __init__(self, bank: MaskBank, cfg: MaskConfig) -> None:
        self.bank, self.cfg = bank, cfg

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        img, label = make_sample(self.bank, self.cfg, int(k))
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))), torch.from_numpy(label)[None]


class _Batches(torch.utils.data.Sampler):
    def __init__(self, batch: int, start: int) -> None:
        self.batch, self.start = batch, start

    def __iter__(self) -> Iterator[list[int]]:
        it = self.start
        while True:
            yield list(range(it * self.batch, (it + 1) * self.batch))
            it += 1

    def __len__(self) -> int:
        return 2**62


def _hull_prior_of(model: Path, default: bool) -> bool:
    """The input a fine-tuned model inherits from its ``--init`` model (image alone, or image + hull); ``default``
    where that model's config cannot be read (``init_modules`` then names the problem)."""
    try:
        return config_from_state(json.loads((model / CONFIG_FILE).read_text()), model).hull_prior
    except (OSError, ValueError, FacelabError):
        return default


class MaskTrainer(RunLoop):
    curve_keys = ("bce", "dice")

    def __init__(
        self,
        facesets: Sequence[str | Path],
        out: str | Path,
        cfg: MaskConfig,
        given: set[str] | None = None,
        generic: bool = False,
        init_from: str | Path | None = None,
    ) -> None:
        self.dist = Dist()
        if self.dist.world > 1:
            raise FacelabError("mask training runs in one process (no torchrun)")
        self.model_dir = Path(out)
        refuse_overlap(
            {**{f"--faceset {f}": f for f in facesets}, "--init mask model": init_from}, {"--out": self.model_dir}
        )
        self.bank = load_mask_bank(facesets, generic)
        ensure_writable_dir(self.model_dir, "--out")
        self.cfg, resuming = resolve_run_config(self.model_dir, cfg, given or set())
        if not resuming and init_from is not None and "hull_prior" not in (given or set()):
            self.cfg = replace(self.cfg, hull_prior=_hull_prior_of(Path(init_from), self.cfg.hull_prior))
        self.generic = generic
        torch.manual_seed(self.cfg.seed)
        self.net = build_net(self.cfg).to(self.dist.device)
        self.opt = build_optimizer(self.net.parameters(), self.cfg)
        self.iteration, self.history = 0, {}
        if resuming:
            self.load_checkpoint()
        elif init_from is not None:
            self._init_from(Path(init_from))
        self.init_from = str(init_from) if init_from is not None else None
        self.write_config()

    def _init_from(self, src: Path) -> None:
        it = checkpoint.init_modules(src, {"net": self.net}, "mask model")
        log.info("initialised from %s (iteration %s)", src, it)

    @property
    def schedule(self) -> Schedule:
        return Schedule.of(self.cfg)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"net": self.net}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": self.opt}

    def extra_state(self) -> dict[str, Any]:
        return {"mask": asdict(self.cfg), "generic": self.generic, "facelab_version": __version__}

    def write_config(self) -> None:
        doc = {
            "mask": asdict(self.cfg),
            "generic": self.generic,
            "faces": len(self.bank),
            "labelled_faces": int(self.bank.labelled.sum()),
            "parameters": count_params(self.net),
            "facelab_version": __version__,
        }
        write_atomic(self.model_dir / CONFIG_FILE, json.dumps(doc, indent=1).encode())

    def oom_hint(self) -> str:
        return f"batch {self.cfg.batch} does not fit; try --batch {max(1, self.cfg.batch // 2)}"

    def loader(self) -> Any:
        return torch.utils.data.DataLoader(
            _Samples(self.bank, self.cfg),
            batch_sampler=_Batches(self.cfg.batch, self.iteration),
            num_workers=self.cfg.workers,
        )

    def step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        x, y = (t.to(self.dist.device) for t in batch)
        self.net.train()
        loss, parts = mask_loss(self.net(x), y, self.cfg.dice_weight)
        finite_or_raise({"loss": loss})
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return parts

    def preview(self) -> None:
        """Fixed samples (counter far past any run's): input, label, prediction, prediction over the input."""
        pairs = [make_sample(self.bank, self.cfg, 10**12 + j) for j in range(PREVIEW_SAMPLES)]
        x = torch.from_numpy(np.stack([p[0].transpose(2, 0, 1) for p in pairs]))
        y = torch.from_numpy(np.stack([p[1] for p in pairs]))[:, None]
        self.net.eval()
        with torch.no_grad():
            pred = torch.sigmoid(self.net(x.to(self.dist.device))).float().cpu()
        rgb = x[:, :3]  # the hull channel, when there is one, is not shown
        rows = [rgb, y.expand(-1, 3, -1, -1), pred.expand(-1, 3, -1, -1), rgb * (0.3 + 0.7 * pred)]
        png = preview_grid_png(rows, ["input", "label", "predicted", "kept"], self.iteration)
        write_atomic(self.model_dir / "preview.png", png)
        (self.model_dir / "previews").mkdir(exist_ok=True)
        write_atomic(self.model_dir / "previews" / f"iter_{self.iteration:08d}.png", png)
