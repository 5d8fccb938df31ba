"""The training run: resume, step, checkpoint, preview, log. Works on CPU, one GPU, or many under torchrun.

Exactness: model init uses ``seed``; iteration ``i`` reseeds torch with ``(seed, i)`` and its batch is a pure
function of ``(seed, i)`` (see ``samples.py``), so a run resumed from a checkpoint continues bit-for-bit like an
uninterrupted one (fp32, CPU, same thread count).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from facelab import __version__
from facelab.config import ModelConfig, TrainConfig
from facelab.errors import FacelabError
from facelab.io.atomic import ensure_writable_dir, write_atomic
from facelab.models.discriminators import CodeDiscriminator, UNetPatchDiscriminator
from facelab.models.precision import autocast_dtype
from facelab.models.saehd import SAEHD, parse_archi, validate
from facelab.train import checkpoint, losses
from facelab.train.optim import make_optimizer
from facelab.train.preview import loss_curve_png, preview_grid_png
from facelab.train.samples import CounterBatchSampler, PairDataset, load_bank

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
# TrainConfig fields that may change when a run resumes; the rest define the run.
RESUMABLE = {
    "batch", "lr", "lr_dropout", "clip_grad", "random_warp", "random_src_flip", "random_dst_flip", "masked_training",
    "eyes_mouth_prio", "uniform_yaw", "blur_out_mask", "ct_mode", "random_hsv_power", "degrade_prob", "gan_power",
    "true_face_power", "face_style_power", "bg_style_power", "precision", "workers", "preview_every",
    "autosave_minutes", "backup_every", "backups_kept", "pretrain",
}  # fmt: skip


@dataclass
class RunResult:
    iteration: int
    seconds: float
    history: dict[str, list[float]]
    stopped: str  # "iterations" | "minutes" | "interrupted"


class _Dist:
    """torchrun environment: rank, world size, device."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            self.device = torch.device("cuda", self.local)
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device("cpu")
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0


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
    refused = [
        f"{f.name} {getattr(old_m, f.name)} -> {getattr(model_cfg, f.name)}"
        for f in fields(ModelConfig)
        if f.name in given and getattr(old_m, f.name) != getattr(model_cfg, f.name)
    ]
    refused += [
        f"{f.name} {getattr(old_t, f.name)} -> {getattr(train_cfg, f.name)}"
        for f in fields(TrainConfig)
        if f.name in given and f.name not in RESUMABLE and getattr(old_t, f.name) != getattr(train_cfg, f.name)
    ]
    if refused:
        raise FacelabError(
            f"{model_dir}: these options cannot change on resume: {', '.join(refused)} (use a new --model folder)"
        )
    t = replace(old_t, **{k: getattr(train_cfg, k) for k in given if k in RESUMABLE})
    return old_m, t, True


class Trainer:
    """Holds one run's model, optimizers and data; ``run`` trains until a limit and checkpoints."""

    def __init__(
        self,
        src: str | Path,
        dst: str | Path,
        model_dir: str | Path,
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        given: set[str] | None = None,
    ) -> None:
        self.dist = _Dist()
        self.model_dir = Path(model_dir)
        src, dst = Path(src), Path(dst)
        if src.resolve() == dst.resolve() and not train_cfg.pretrain:
            raise FacelabError(f"{src}: src and dst are the same faceset (use --pretrain to train on one faceset)")
        if self.dist.main:
            ensure_writable_dir(self.model_dir)
        self.mcfg, self.tcfg, resuming = resolve_configs(self.model_dir, model_cfg, train_cfg, given or set())
        try:
            validate(self.mcfg)
        except ValueError as e:
            raise FacelabError(str(e)) from e
        self.family, self.opts = parse_archi(self.mcfg.archi)
        res = self.mcfg.resolution
        self.src_bank = load_bank(src, self.mcfg.face_type, res)
        self.dst_bank = self.src_bank if train_cfg.pretrain and src == dst else load_bank(dst, self.mcfg.face_type, res)
        torch.manual_seed(self.tcfg.seed)
        self.model = SAEHD(self.mcfg).to(self.dist.device, memory_format=torch.channels_last)
        self.iteration = 0
        self.history: dict[str, list[float]] = {}
        self._build_discriminators()
        self._build_optimizers()
        if resuming:
            self._restore()
        self._ddp_model = self._wrap_ddp(self.model)
        self.amp = autocast_dtype(self.tcfg.precision, self.dist.device)
        self._tb = None
        self._preview_batch = None
        if self.dist.main:
            self._write_config()

    # --- setup -------------------------------------------------------------------------------------------------

    def _build_discriminators(self) -> None:
        t, res = self.tcfg, self.mcfg.resolution
        self.gan_d = self.code_d = None
        if t.gan_power > 0:
            self.gan_d = UNetPatchDiscriminator(3, t.gan_patch_size or res // 8, t.gan_dims).to(self.dist.device)
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

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {k: v for k, v in (("g", self.opt), ("d", self.opt_d), ("code_d", self.opt_code)) if v is not None}

    def _modules(self) -> dict[str, torch.nn.Module]:
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
        ck = checkpoint.load(self.model_dir)
        if ck is None:
            return
        modules = self._modules()
        for name, mod in modules.items():
            sd = {k[len(name) + 1 :]: v for k, v in ck.model.items() if k.startswith(name + ".")}
            try:
                mod.load_state_dict(sd)
            except RuntimeError as e:
                raise FacelabError(
                    f"{self.model_dir}: checkpoint does not fit this model ({str(e).splitlines()[0]})"
                ) from e
        was_pretrain = ck.state.get("pretrain", False)
        self.iteration = int(ck.state["iteration"])
        self.history = ck.state.get("history", {})
        if was_pretrain and not self.tcfg.pretrain:
            # DFL: leaving pretraining restarts the count and re-initialises the inters; optimizer state restarts.
            log.info("pretraining finished: iteration reset to 0, inter layers re-initialised")
            self.model.reset_inters()
            self.iteration, self.history = 0, {}
            self._build_optimizers()
            return
        for name, opt in self._optimizers().items():
            if name in ck.optimizers:
                opt.load_state_dict(ck.optimizers[name])
                for g in opt.param_groups:  # resumable lr override
                    g["lr"] = self.tcfg.lr

    def _write_config(self) -> None:
        doc = {
            "model": asdict(self.mcfg),
            "train": asdict(self.tcfg),
            "facelab_version": __version__,
            "param_counts": self.model.param_counts(),
        }
        write_atomic(self.model_dir / CONFIG_FILE, json.dumps(doc, indent=1).encode())

    # --- one iteration -----------------------------------------------------------------------------------------

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One generator step (+ discriminator steps). Raises ``losses.NonFiniteLossError`` without updating."""
        t, res = self.tcfg, self.mcfg.resolution
        dev = self.dist.device
        b = {k: v.to(dev, non_blocking=True) for k, v in batch.items()}
        need_swap = not t.pretrain and (t.face_style_power > 0 or t.bg_style_power > 0)
        with torch.autocast(dev.type, dtype=self.amp or torch.float32, enabled=self.amp is not None):
            out = self._ddp_model(_cl(b["src_warped"]), _cl(b["dst_warped"]), with_swap=need_swap)
        out = {k: v.float() for k, v in out.items()}
        src_t, dst_t = b["src_target"], b["dst_target"]
        if t.blur_out_mask:
            src_t = losses.blur_out_mask(src_t, b["src_mask"], res)
            dst_t = losses.blur_out_mask(dst_t, b["dst_mask"], res)
        em = t.eyes_mouth_prio
        ls = losses.recon_loss(
            src_t,
            out["pred_src_src"],
            b["src_mask"],
            out["pred_src_srcm"],
            res,
            masked=t.masked_training,
            em_mask=b["src_em"] if em else None,
        )
        ld = losses.recon_loss(
            dst_t,
            out["pred_dst_dst"],
            b["dst_mask"],
            out["pred_dst_dstm"],
            res,
            masked=t.masked_training,
            em_mask=b["dst_em"] if em else None,
        )
        total = ls["total"].mean() + ld["total"].mean()
        scal = {"src": float(ls["total"].detach().mean()), "dst": float(ld["total"].detach().mean())}
        if t.face_style_power > 0 and not t.pretrain:
            blur_r = res // 8
            a = losses.gaussian_blur(out["pred_src_dst"] * out["pred_src_dstm"], blur_r)
            ref = losses.gaussian_blur((out["pred_dst_dst"] * out["pred_dst_dstm"]).detach(), blur_r)
            fs = losses.style_loss(a, ref).mean() * (100.0 * t.face_style_power)
            total, scal["face_style"] = total + fs, _f(fs)
        if t.bg_style_power > 0 and not t.pretrain:
            m = 1 - losses.gaussian_blur(b["dst_mask"], max(1, res // 32)).clamp(0, 1)
            k = int(res / 11.6)
            bg = (losses.dssim(out["pred_src_dst"] * m, dst_t * m, k) * 10 * t.bg_style_power / 100).mean()
            bg = bg + ((out["pred_src_dst"] * m - dst_t * m) ** 2).mean() * 10 * t.bg_style_power / 100
            total, scal["bg_style"] = total + bg, _f(bg)
        if self.code_d is not None:
            tf = losses.gan_g_loss([self.code_d(out["src_code"])]) * t.true_face_power
            total, scal["true_face"] = total + tf, _f(tf)
        if self.gan_d is not None:
            sm = losses.soft_dilate(b["src_mask"], res) if t.masked_training else 1.0
            fake = out["pred_src_src"] * sm
            g = losses.gan_g_loss(list(self.gan_d(fake))) * t.gan_power
            total, scal["gan"] = total + g, _f(g)
        losses.finite_or_raise({"total": total, **{k: torch.tensor(v) for k, v in scal.items()}})
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        if t.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(self._trainable(), t.clip_grad)
        self.opt.step()
        if self.gan_d is not None:
            real = src_t * (losses.soft_dilate(b["src_mask"], res) if t.masked_training else 1.0)
            d = losses.gan_d_loss(list(self.gan_d(real)), list(self.gan_d(fake.detach())))
            self.opt_d.zero_grad(set_to_none=True)
            d.backward()
            self.opt_d.step()
            scal["gan_d"] = _f(d)
        if self.code_d is not None:
            d = losses.gan_d_loss([self.code_d(out["dst_code"].detach())], [self.code_d(out["src_code"].detach())])
            self.opt_code.zero_grad(set_to_none=True)
            d.backward()
            self.opt_code.step()
            scal["code_d"] = _f(d)
        scal["src_dssim"] = _f(ls["dssim"].mean())
        scal["dst_dssim"] = _f(ld["dssim"].mean())
        scal["src_mse"] = _f(ls["mse"].mean())
        scal["dst_mse"] = _f(ld["mse"].mean())
        return scal

    # --- the run -----------------------------------------------------------------------------------------------

    def loader(self) -> DataLoader:
        ds = PairDataset(self.src_bank, self.dst_bank, self._data_cfg())
        sampler = CounterBatchSampler(self.tcfg.batch, self.iteration, self.dist.rank, self.dist.world)
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

    def run(
        self,
        iterations: int | None = None,
        minutes: float | None = None,
        progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> RunResult:
        """Train until ``iterations`` (total, counted from the model's first) or ``minutes`` (this run); saves on
        the way (autosave), on Ctrl+C and at the end."""
        if iterations is None and minutes is None:
            raise FacelabError("give --iters N or --minutes M")
        t0 = last_save = time.monotonic()
        stopped = "iterations"
        bad_steps = 0
        it_start = self.iteration
        if iterations is not None and self.iteration >= iterations:
            return RunResult(self.iteration, 0.0, self.history, "iterations")
        data = iter(self.loader())
        tick = time.perf_counter()
        try:
            while True:
                if iterations is not None and self.iteration >= iterations:
                    break
                if minutes is not None and time.monotonic() - t0 >= minutes * 60:
                    stopped = "minutes"
                    break
                batch = next(data)
                torch.manual_seed(hash_seed(self.tcfg.seed, self.iteration))
                try:
                    scal = self.step(batch)
                    bad_steps = 0
                except losses.NonFiniteLossError as e:
                    bad_steps += 1
                    log.warning("iteration %d: %s; step skipped", self.iteration, e)
                    if bad_steps >= 3:
                        self._recover()
                        bad_steps = 0
                    self.iteration += 1
                    continue
                except torch.OutOfMemoryError as e:
                    raise FacelabError(
                        f"out of memory at batch {self.tcfg.batch} and resolution "
                        f"{self.mcfg.resolution}; try --batch {max(1, self.tcfg.batch // 2)}"
                    ) from e
                scal = self._all_ranks_mean(scal)
                self.iteration += 1
                now = time.perf_counter()
                scal["ms_per_iter"] = (now - tick) * 1000
                tick = now
                self._log(scal)
                if progress is not None and self.dist.main:
                    progress({"iteration": self.iteration, **scal})
                if self.dist.main and self.tcfg.preview_every and self.iteration % self.tcfg.preview_every == 0:
                    self.write_previews()
                if time.monotonic() - last_save >= self.tcfg.autosave_minutes * 60:
                    self.save()
                    last_save = time.monotonic()
        except KeyboardInterrupt:
            stopped = "interrupted"
        finally:
            shutdown = getattr(data, "_shutdown_workers", None)  # stop loader processes now, not at a later GC
            if shutdown is not None:
                shutdown()
            del data
            if self.iteration > it_start or not (self.model_dir / checkpoint.CKPT).exists():
                self.save()
            if self.dist.main:
                self.write_previews()
            if self._tb is not None:
                self._tb.flush()
        return RunResult(self.iteration, time.monotonic() - t0, self.history, stopped)

    def _all_ranks_mean(self, scal: dict[str, float]) -> dict[str, float]:
        """Logged losses are the global batch's, not rank 0's share (comparable to a one-process run)."""
        if self.dist.world == 1:
            return scal
        keys = sorted(scal)
        t = torch.tensor([scal[k] for k in keys], dtype=torch.float64, device=self.dist.device)
        dist.all_reduce(t)
        return dict(zip(keys, (t / self.dist.world).tolist()))

    def _recover(self) -> None:
        """Three non-finite steps in a row: the weights have collapsed; go back to the last checkpoint."""
        ck = checkpoint.load(self.model_dir)
        if ck is None:
            raise FacelabError("training diverged (non-finite losses) before the first checkpoint; lower --lr")
        log.warning("training diverged: restored the checkpoint of iteration %s", ck.state["iteration"])
        for name, mod in self._modules().items():
            mod.load_state_dict({k[len(name) + 1 :]: v for k, v in ck.model.items() if k.startswith(name + ".")})
        for name, opt in self._optimizers().items():
            opt.load_state_dict(ck.optimizers[name])

    def _log(self, scal: dict[str, float]) -> None:
        if not self.dist.main:
            return
        for k, v in scal.items():
            self.history.setdefault(k, []).append(round(float(v), 6))
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.model_dir / "tensorboard"))
        for k, v in scal.items():
            self._tb.add_scalar(f"loss/{k}" if k != "ms_per_iter" else "speed/ms_per_iter", v, self.iteration)
        self._tb.add_scalar("speed/it_per_s", 1000.0 / max(scal["ms_per_iter"], 1e-6), self.iteration)
        self._tb.add_scalar("lr", self.opt.param_groups[0]["lr"], self.iteration)

    def save(self) -> None:
        if not self.dist.main:
            return
        state = {
            "iteration": self.iteration,
            "history": self.history,
            "pretrain": self.tcfg.pretrain,
            "model": asdict(self.mcfg),
            "train": asdict(self.tcfg),
            "facelab_version": __version__,
            "torch_rng": torch.get_rng_state().tolist(),
            "saved_at": time.time(),
        }
        weights = {f"{n}.{k}": v for n, m in self._modules().items() for k, v in m.state_dict().items()}
        checkpoint.save(
            self.model_dir,
            checkpoint.Checkpoint(weights, {k: o.state_dict() for k, o in self._optimizers().items()}, state),
        )
        self._write_config()
        if self.tcfg.backup_every and self.iteration % self.tcfg.backup_every == 0:
            checkpoint.backup(self.model_dir, self.iteration, self.tcfg.backups_kept)

    def write_previews(self) -> None:
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
        if self.history:
            write_atomic(self.model_dir / "losses.png", loss_curve_png(self.history, ("src", "dst")))


def _f(t: torch.Tensor) -> float:
    return float(t.detach())


def _cl(x: torch.Tensor) -> torch.Tensor:
    """channels_last: oneDNN's fast convolution layout on CPU (and tensor cores' on GPU)."""
    return x.contiguous(memory_format=torch.channels_last)


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images.astype(np.float32).transpose(0, 3, 1, 2) / 255.0)


def hash_seed(seed: int, iteration: int) -> int:
    """A 63-bit seed for iteration ``iteration`` of a run seeded ``seed``."""
    return int(np.random.SeedSequence([seed, iteration]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def history_mean(history: dict[str, list[float]], key: str, start: int, stop: int | None = None) -> float:
    vals = history.get(key, [])[start:stop]
    return float(np.mean(vals)) if vals else math.nan
