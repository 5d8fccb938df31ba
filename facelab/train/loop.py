"""The swap model's training run: what one iteration is, its data, its previews. Works on CPU, one GPU, or many
under torchrun; the run machinery (limits, checkpoints, resume, logging) is ``facelab.runs.loop.RunLoop``.

Exactness: model init uses ``seed``; iteration ``i``'s batch is a pure function of ``(seed, i)`` (see
``samples.py``), so a run resumed from a checkpoint continues bit-for-bit like an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from facelab import __version__
from facelab.config import ModelConfig, TrainConfig
from facelab.errors import FacelabError
from facelab.imaging.ada import AdaController, AugmentPipe
from facelab.io.atomic import ensure_writable_dir, write_atomic
from facelab.io.paths import refuse_overlap
from facelab.models.discriminators import CodeDiscriminator, UNetPatchDiscriminator
from facelab.models.precision import autocast_dtype
from facelab.models.saehd import SAEHD, parse_archi, validate
from facelab.runs.guard import finite_or_raise
from facelab.runs.loop import Dist, RunLoop, Schedule
from facelab.runs.plan import budget_lr_factor
from facelab.runs.preview import preview_grid_png
from facelab.runs.resume import refuse, refused_changes
from facelab.train import losses
from facelab.train.optim import make_optimizer
from facelab.train.samples import MASK_SOURCES, CounterBatchSampler, Folders, PairDataset, load_bank

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
SIDES = ("src", "dst")  # the two autoencoders, each trained to reconstruct its own faceset
# TrainConfig fields that may change when a run resumes; the rest define the run.
RESUMABLE = {
    "batch", "lr", "lr_dropout", "clip_grad", "random_warp", "random_src_flip", "random_dst_flip", "masked_training",
    "eyes_mouth_prio", "uniform_yaw", "uniform_expression", "blur_out_mask", "ct_mode", "random_hsv_power", "degrade_prob", "gan_power",
    "true_face_power", "face_style_power", "bg_style_power", "precision", "workers", "preview_every",
    "autosave_minutes", "autosave_iters", "backup_every", "backups_kept", "pretrain", "synthetic_faces",
    "synthetic_weight", "ada", "lr_schedule", "final_no_warp", "plan_iters", "mask_source",
}  # fmt: skip
LR_SCHEDULES = ("constant", "budget")


def resolve_configs(
    model_dir: Path, model_cfg: ModelConfig, train_cfg: TrainConfig, given: set[str]
) -> tuple[ModelConfig, TrainConfig, bool]:
    """Configs for this run. A new model dir takes the ones given; an existing one keeps its own, with the
    resumable options in ``given`` overridden. Changing anything else is refused with the list of differences."""
    path = model_dir / CONFIG_FILE
    if not path.exists():
        return model_cfg, train_cfg, False
    try:
        saved = json.loads(path.read_text())
        old_m, old_t = ModelConfig(**saved["model"]), TrainConfig(**saved["train"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FacelabError(f"{path}: not a facelab model config ({e})") from e
    refuse(model_dir, refused_changes(old_m, model_cfg, given) + refused_changes(old_t, train_cfg, given, RESUMABLE),
           "--model folder")  # fmt: skip
    t = replace(old_t, **{k: getattr(train_cfg, k) for k in given if k in RESUMABLE})
    return old_m, t, True


class Trainer(RunLoop):
    """Holds one run's model, optimizers and data; ``run`` (from RunLoop) trains until a limit and checkpoints."""

    curve_keys = ("src", "dst")

    def __init__(
        self,
        src: Folders,
        dst: str | Path | None,
        model_dir: str | Path,
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        given: set[str] | None = None,
    ) -> None:
        """``dst`` None: pretraining on the src folders alone (their pool feeds both sides, as DFL's pretrain set)."""
        self.dist = Dist()
        self.model_dir = Path(model_dir)
        # src: one faceset folder, or several pooled into one (real faces + rendered ones in their own folder)
        srcs = [Path(src)] if isinstance(src, str | Path) else [Path(s) for s in src]
        if not srcs:
            raise FacelabError("no src faceset given")
        if dst is None and not train_cfg.pretrain:
            raise FacelabError("no dst faceset given (only --pretrain trains on src facesets alone)")
        dst = Path(dst) if dst is not None else None
        for s in srcs:
            if dst is not None and s.resolve() == dst.resolve() and not train_cfg.pretrain:
                raise FacelabError(f"{s}: src and dst are the same faceset (use --pretrain to train on one faceset)")
        named = {"src faceset": srcs[0]} if len(srcs) == 1 else {f"src faceset {i + 1}": s for i, s in enumerate(srcs)}
        refuse_overlap({**named, **({"dst faceset": dst} if dst else {})}, {"--model": self.model_dir})
        self.mcfg, self.tcfg, resuming = resolve_configs(self.model_dir, model_cfg, train_cfg, given or set())
        if self.tcfg.synthetic_faces not in ("use", "exclude"):
            raise FacelabError(f"synthetic_faces must be use or exclude, not {self.tcfg.synthetic_faces!r}")
        if self.tcfg.lr_schedule not in LR_SCHEDULES:
            raise FacelabError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, not {self.tcfg.lr_schedule!r}")
        if not 0 <= self.tcfg.final_no_warp < 1:
            raise FacelabError(f"--final-no-warp is a fraction of the run in [0, 1), not {self.tcfg.final_no_warp}")
        if self.tcfg.mask_source not in MASK_SOURCES:
            raise FacelabError(f"--mask-source must be one of {', '.join(MASK_SOURCES)}, not {self.tcfg.mask_source!r}")
        if not 0 < self.tcfg.synthetic_weight < math.inf:
            raise FacelabError(f"--synthetic-weight must be a number > 0, not {self.tcfg.synthetic_weight}")
        try:
            validate(self.mcfg)  # before the folder is made: bad options leave nothing behind
        except ValueError as e:
            raise FacelabError(str(e)) from e
        if self.dist.main:
            ensure_writable_dir(self.model_dir, "--model")
        self.family, self.opts = parse_archi(self.mcfg.archi)
        res = self.mcfg.resolution
        synth, masks = self.tcfg.synthetic_faces == "use", self.tcfg.mask_source
        self.src_bank = load_bank(srcs, self.mcfg.face_type, res, synth, masks)
        self.dst_bank = (
            self.src_bank
            if dst is None or (train_cfg.pretrain and srcs == [dst])
            else load_bank(dst, self.mcfg.face_type, res, synth, masks)
        )
        torch.manual_seed(self.tcfg.seed)
        self.model = SAEHD(self.mcfg).to(self.dist.device, memory_format=torch.channels_last)
        self.iteration = 0
        self.history: dict[str, list[float]] = {}
        self._ada_last: dict[str, float] = {"ada_p": 0.0}  # the ADA controller's latest p and r_t, logged each step
        self._build_discriminators()
        self._build_optimizers()
        if resuming:
            self._restore()
        self._ddp_model = self._wrap_ddp(self.model)
        self.amp = autocast_dtype(self.tcfg.precision, self.dist.device)
        self._preview_batch = None
        self._sampler: CounterBatchSampler | None = None
        self._warp_until: int | None = None  # first iteration drawn without random warp (None: the config's)
        if self.dist.main:
            self.write_config()

    # --- setup -------------------------------------------------------------------------------------------------

    def _build_discriminators(self) -> None:
        t, res = self.tcfg, self.mcfg.resolution
        self.gan_d = self.code_d = None
        if t.gan_power > 0:
            self.gan_d = UNetPatchDiscriminator(3, t.gan_patch_size or res // 8, t.gan_dims).to(self.dist.device)
        self.ada_pipe, self.ada = None, None
        if t.ada:
            if t.gan_power <= 0:
                raise FacelabError("--ada augments what the GAN discriminator sees: it needs --gan-power > 0")
            # StyleGAN2-ADA's recipe on the swap model's GAN: every image D sees is augmented with strength p,
            # and p follows D's overfitting (r_t = E[sign D(real)] held at 0.6)
            self.ada_pipe = AugmentPipe().to(self.dist.device)
            self.ada = AdaController(self.ada_pipe, batch=t.batch)
        if t.true_face_power > 0:
            if self.family != "df":
                raise FacelabError("true_face_power works with DF models only (DFL behaves the same)")
            code = self.model.code_shape
            self.code_d = CodeDiscriminator(code[0], code[1]).to(self.dist.device)

    def _trainable(self) -> list[torch.nn.Parameter]:
        # LIAE with random warp off: inter_AB is frozen (DFL), so the shared code stays anchored.
        groups = self.model.trainable_groups(random_warp=self._data_cfg().random_warp)
        return [p for net in groups.values() for p in net.parameters()]

    def _build_optimizers(self) -> None:
        t = self.tcfg
        dropout = 1.0 if t.pretrain else t.lr_dropout
        self.opt = make_optimizer(t.optimizer, self._trainable(), t.lr, dropout)
        self.opt_d = make_optimizer(t.optimizer, self.gan_d.parameters(), t.lr, 1.0) if self.gan_d else None
        self.opt_code = make_optimizer(t.optimizer, self.code_d.parameters(), t.lr, 1.0) if self.code_d else None

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {k: v for k, v in (("g", self.opt), ("d", self.opt_d), ("code_d", self.opt_code)) if v is not None}

    def modules(self) -> dict[str, torch.nn.Module]:
        return {
            k: v for k, v in (("model", self.model), ("gan_d", self.gan_d), ("code_d", self.code_d)) if v is not None
        }

    def _wrap_ddp(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.dist.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.dist.device.index] if self.dist.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)

    def _restore(self) -> None:
        ck = self.load_checkpoint()
        if ck is None:
            return
        if ck.state.get("pretrain", False) and not self.tcfg.pretrain:
            # DFL: leaving pretraining restarts the count and re-initialises the inters; optimizer state restarts.
            log.info("pretraining finished: iteration reset to 0, inter layers re-initialised")
            self.model.reset_inters()
            self.iteration, self.history = 0, {}
            self._build_optimizers()
            return
        for opt in self.optimizers().values():
            for g in opt.param_groups:  # resumable lr override
                g["lr"] = self.tcfg.lr
        if self.ada is not None and ck.state.get("ada"):
            self.ada.load_state_dict(ck.state["ada"])

    # --- RunLoop hooks -----------------------------------------------------------------------------------------

    @property
    def schedule(self) -> Schedule:
        t = self.tcfg
        return Schedule(t.seed, t.preview_every, t.autosave_minutes, t.backup_every, t.backups_kept, t.autosave_iters)

    def extra_state(self) -> dict[str, Any]:
        return {
            "ada": self.ada.state_dict() if self.ada is not None else None,  # includes p
            "pretrain": self.tcfg.pretrain,
            "model": asdict(self.mcfg),
            "train": asdict(self.tcfg),
            "facelab_version": __version__,
        }

    def oom_hint(self) -> str:
        return (
            f"batch {self.tcfg.batch} at resolution {self.mcfg.resolution} does not fit; "
            f"try --batch {max(1, self.tcfg.batch // 2)}"
        )

    def extra_scalars(self) -> dict[str, float]:
        return {"lr": self.opt.param_groups[0]["lr"]}

    def planned_end(self, iterations: int | None) -> int | None:
        return self.tcfg.plan_iters or iterations

    def on_progress(self, progress: float) -> None:
        """The budget schedule's lr, and random warp off for the run's last ``final_no_warp``: from a planned
        iteration when the plan counts iterations (so a resumed run switches where an uninterrupted one would),
        else from the batches not yet drawn."""
        t, plan = self.tcfg, self._plan
        if t.lr_schedule == "budget":
            lr = t.lr * budget_lr_factor(progress)
            for opt in self.optimizers().values():
                for g in opt.param_groups:
                    g["lr"] = lr
        if t.final_no_warp <= 0 or not t.random_warp or plan is None:
            self._warp_until = None
        elif plan.end_iter is not None:
            self._warp_until = plan.start_iter + math.ceil((1 - t.final_no_warp) * (plan.end_iter - plan.start_iter))
        elif progress >= 1 - t.final_no_warp and self._warp_until is None:
            self._warp_until = self.iteration
        if self._sampler is not None:
            self._sampler.warp_until = self._warp_until

    def write_config(self) -> None:
        doc = {
            "model": asdict(self.mcfg),
            "train": asdict(self.tcfg),
            "facelab_version": __version__,
            "param_counts": self.model.param_counts(),
        }
        write_atomic(self.model_dir / CONFIG_FILE, json.dumps(doc, indent=1).encode())

    # --- one iteration -----------------------------------------------------------------------------------------

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One generator step (+ discriminator steps). Raises ``NonFiniteLossError`` without updating. The loss
        formulas are the pure functions of ``facelab.train.losses``; this method runs the nets and the optimizers."""
        t, res = self.tcfg, self.mcfg.resolution
        dev = self.dist.device
        b = {k: v.to(dev, non_blocking=True) for k, v in batch.items()}
        need_swap = not t.pretrain and (t.face_style_power > 0 or t.bg_style_power > 0)
        with torch.autocast(dev.type, dtype=self.amp or torch.float32, enabled=self.amp is not None):
            out = self._ddp_model(_cl(b["src_warped"]), _cl(b["dst_warped"]), with_swap=need_swap)
        out = {k: v.float() for k, v in out.items()}
        targets = {side: b[f"{side}_target"] for side in SIDES}
        if t.blur_out_mask:
            targets = {side: losses.blur_out_mask(x, b[f"{side}_mask"], res) for side, x in targets.items()}
        rec = {side: self._recon_loss(side, targets[side], b, out) for side in SIDES}
        total = rec["src"]["total"].mean() + rec["dst"]["total"].mean()
        scal = {side: _f(rec[side]["total"].mean()) for side in SIDES}
        if t.face_style_power > 0 and not t.pretrain:
            fs = losses.face_style_loss(
                out["pred_src_dst"],
                out["pred_src_dstm"],
                out["pred_dst_dst"],
                out["pred_dst_dstm"],
                res,
                t.face_style_power,
            )
            total, scal["face_style"] = total + fs, _f(fs)
        if t.bg_style_power > 0 and not t.pretrain:
            bg = losses.bg_style_loss(out["pred_src_dst"], targets["dst"], b["dst_mask"], res, t.bg_style_power)
            total, scal["bg_style"] = total + bg, _f(bg)
        if self.code_d is not None:
            tf = losses.gan_g_loss(self.code_d(out["src_code"]), weight=t.true_face_power)
            total, scal["true_face"] = total + tf, _f(tf)
        if self.gan_d is not None:
            fake = losses.gan_input(out["pred_src_src"], b["src_mask"], res, t.masked_training)
            g = losses.gan_g_loss(list(self.gan_d(self._ada_aug(fake))), weight=t.gan_power)
            total, scal["gan"] = total + g, _f(g)
        finite_or_raise({"total": total, **{k: torch.tensor(v) for k, v in scal.items()}})
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        if t.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(self._trainable(), t.clip_grad)
        self.opt.step()
        if self.gan_d is not None:
            real = losses.gan_input(targets["src"], b["src_mask"], res, t.masked_training)
            logits_real = list(self.gan_d(self._ada_aug(real)))
            d = losses.gan_d_loss(logits_real, list(self.gan_d(self._ada_aug(fake.detach()))))
            if self.ada is not None:
                self.ada.accumulate(torch.cat([x.detach().flatten() for x in logits_real]))
                adj = self.ada.step()
                if adj is not None:
                    self._ada_last = adj
                scal.update(self._ada_last)
            self.opt_d.zero_grad(set_to_none=True)
            d.backward()
            self.opt_d.step()
            scal["gan_d"] = _f(d)
        if self.code_d is not None:
            d = losses.gan_d_loss(self.code_d(out["dst_code"].detach()), self.code_d(out["src_code"].detach()))
            self.opt_code.zero_grad(set_to_none=True)
            d.backward()
            self.opt_code.step()
            scal["code_d"] = _f(d)
        for term in ("dssim", "mse"):
            scal.update({f"{side}_{term}": _f(rec[side][term].mean()) for side in SIDES})
        return scal

    def _recon_loss(
        self, side: str, target: torch.Tensor, b: dict[str, torch.Tensor], out: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """``side``'s (src or dst) reconstruction loss: its autoencoder's prediction and mask against ``target``."""
        t = self.tcfg
        return losses.recon_loss(
            target,
            out[f"pred_{side}_{side}"],
            b[f"{side}_mask"],
            out[f"pred_{side}_{side}m"],
            self.mcfg.resolution,
            masked=t.masked_training,
            em_mask=b[f"{side}_em"] if t.eyes_mouth_prio else None,
        )

    def _ada_aug(self, x: torch.Tensor) -> torch.Tensor:
        """ADA on [0, 1] images (the pipe works on [-1, 1]); identity without --ada."""
        if self.ada_pipe is None:
            return x
        return (self.ada_pipe(x.float() * 2 - 1) + 1) / 2

    # --- the run -----------------------------------------------------------------------------------------------

    def loader(self) -> DataLoader:
        ds = PairDataset(self.src_bank, self.dst_bank, self._data_cfg())
        sampler = CounterBatchSampler(self.tcfg.batch, self.iteration, self.dist.rank, self.dist.world)
        sampler.warp_until = self._warp_until
        self._sampler = sampler
        w = self.tcfg.workers
        return DataLoader(
            ds,
            batch_sampler=sampler,
            num_workers=w,
            prefetch_factor=4 if w > 0 else None,
            pin_memory=self.dist.device.type == "cuda",
        )

    def _data_cfg(self) -> TrainConfig:
        if not self.tcfg.pretrain:
            return self.tcfg
        # DFL's pretraining: no warp, both flips, no colour games, uniform yaw.
        return replace(
            self.tcfg,
            random_warp=False,
            random_src_flip=True,
            random_dst_flip=True,
            random_hsv_power=0.0,
            ct_mode="none",
            uniform_yaw=True,
        )

    def preview(self) -> None:
        if self._preview_batch is None:
            n = min(4, len(self.src_bank), len(self.dst_bank))
            # spread over the faceset: neighbouring video frames would show the same face four times
            pick = {
                side: np.linspace(0, len(bank) - 1, n).astype(int)
                for side, bank in (("src", self.src_bank), ("dst", self.dst_bank))
            }
            self._preview_batch = {
                "src": _to_tensor(self.src_bank.images[pick["src"]]),
                "dst": _to_tensor(self.dst_bank.images[pick["dst"]]),
            }
        self.model.eval()
        with torch.no_grad():
            src = self._preview_batch["src"].to(self.dist.device)
            dst = self._preview_batch["dst"].to(self.dist.device)
            out = self.model(src, dst)
        self.model.train()
        rows = [src, out["pred_src_src"], dst, out["pred_dst_dst"], out["pred_src_dst"]]
        labels = ["src", "src->src", "dst", "dst->dst", "dst->src (swap)"]
        write_atomic(self.model_dir / "preview.png", preview_grid_png(rows, labels, self.iteration))


def _f(t: torch.Tensor) -> float:
    return float(t.detach())


def _cl(x: torch.Tensor) -> torch.Tensor:
    """channels_last: oneDNN's fast convolution layout on CPU (and tensor cores' on GPU)."""
    return x.contiguous(memory_format=torch.channels_last)


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images.astype(np.float32).transpose(0, 3, 1, 2) / 255.0)
