"""``facelab augment train``: a StyleGAN2-ADA generator trained on one faceset.

One iteration = the four phases of StyleGAN2-ADA's loop on one minibatch: G main (non-saturating logistic),
G path-length regularisation every ``pl_interval`` steps, D main (logistic on augmented reals and fakes), D R1
every ``r1_interval`` steps (lazy: the penalty is scaled by the interval and Adam's lr/beta are corrected), then
the generator EMA and the ADA controller. Numbers: ../shared/reference/stylegan2-ada-notes.md §3-§6. Every image D
sees goes through DiffAugment (``cfg.diffaug``, Zhao et al. 2020) and then ADA's pipe (``cfg.aug``), each when on;
facesets under 5,000 faces get the small-data preset (``networks.resolve_gan_config``).

Speed: R1 and path length take the gradient w.r.t. the images / ws only (``torch.autograd.grad`` with those inputs
runs no weight-gradient kernels in the first pass; tested). With ADA off, a step has fixed shapes and never waits
for the host on CUDA: latents, noise, style-mixing cut-offs and DiffAugment's parameters are drawn on the device,
reals arrive by a pinned, non-blocking copy, losses are returned as tensors and read back every ``log_every``
iterations by ``RunLoop``, and a non-finite loss is handled as StyleGAN2-ADA does it (NaN gradients become 0; with
Adam's beta1 = 0 that leaves the weights as they were), counted when the losses are read back. ADA's pipe draws
its parameters on the host and works on the images it changes, so with ``aug=ada`` the step syncs.

The run machinery (limits, atomic checkpoints, exact resume, TensorBoard, previews) is the swap trainer's
``RunLoop``. Under torchrun each rank takes its slice of the global batch and gradients are averaged by hand
(DDP does not support the double backward of R1 and path length).
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import safetensors
import safetensors.torch
import torch
import torch.distributed as dist

from facelab import __version__
from facelab.augment import losses
from facelab.augment.networks import Generator, build_networks, param_counts, resolve_gan_config
from facelab.config import GAN_SMALL_DATA_FACES, GanConfig
from facelab.errors import FacelabError, FacesetError
from facelab.faceset.store import face_files, read_face
from facelab.imaging.ada import AdaController, AugmentPipe
from facelab.imaging.diffaugment import apply_diff_augment, parse_policy, sample_params
from facelab.io import checkpoint
from facelab.io.atomic import ensure_writable_dir, write_atomic
from facelab.io.paths import refuse_overlap
from facelab.models.precision import autocast_dtype, precision_label
from facelab.runs.loop import Dist, RunLoop, Schedule, hash_seed
from facelab.runs.preview import preview_grid_png
from facelab.runs.resume import resumed

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
BEST_FILE = "best.safetensors"  # the snapshot that passed sampling's checks best (facelab.augment.select)
RESUMABLE = {
    "precision", "workers", "preview_every", "autosave_minutes", "autosave_iters", "checkpoint_precision",
    "probe_samples",
}  # fmt: skip
PREVIEW_SEED = 123_456  # fixed latents: the preview grid shows the same faces at every iteration
LOG_EVERY_CUDA = 20  # iterations whose losses are read back from the GPU together (one sync instead of 20)
FP16_MAX = 65504.0  # largest finite float16: a tensor beyond it is stored in fp32


def load_reals(faceset: str | Path, resolution: int) -> np.ndarray:
    """The faceset's real (not synthetic) faces as they were aligned, resized to ``resolution``: (N, R, R, 3)
    uint8 RGB. INTER_AREA so a 256 -> 64 px reduction does not alias."""
    files = face_files(faceset)
    if not files:
        raise FacesetError(f"{faceset}: faceset is empty (run 'facelab extract' first)")
    out = []
    for path in files:
        img, meta = read_face(path)
        if meta.synthetic:
            continue
        interp = cv2.INTER_AREA if img.shape[0] > resolution else cv2.INTER_CUBIC
        out.append(cv2.resize(img, (resolution, resolution), interpolation=interp))
    if not out:
        raise FacesetError(f"{faceset}: no real faces (a generator is trained on real faces only)")
    return np.stack(out)


def _rank_slice(n: int, d: Dist) -> slice:
    per = n // d.world
    return slice(d.rank * per, (d.rank + 1) * per)


def _sanitize_grads(params: Sequence[torch.nn.Parameter], d: Dist) -> None:
    """Average gradients over ranks, then StyleGAN2-ADA's NaN guard (NaN -> 0, inf -> +-1e5)."""
    for p in params:
        if p.grad is None:
            continue
        if d.world > 1:
            dist.all_reduce(p.grad)
            p.grad /= d.world
        torch.nan_to_num(p.grad, nan=0.0, posinf=1e5, neginf=-1e5, out=p.grad)


def lazy_adam(params: Any, lr: float, interval: int, fused: bool = False) -> torch.optim.Adam:
    """Adam with StyleGAN2's lazy-regularisation correction: lr * k/(k+1), beta2 ** (k/(k+1)). ``fused``: one
    kernel for all parameters (CUDA and CPU)."""
    r = interval / (interval + 1) if interval > 0 else 1.0
    return torch.optim.Adam(params, lr=lr * r, betas=(0.0, 0.99**r), eps=1e-8, fused=fused or None)


def saved_resolution(gan_dir: Path, default: int) -> int:
    """The resolution of the run saved in ``gan_dir`` (``default`` for a new folder or an unreadable config, which
    ``resolve_run_config`` reports)."""
    try:
        return int(json.loads((gan_dir / CONFIG_FILE).read_text())["gan"]["resolution"])
    except (OSError, ValueError, KeyError, TypeError):
        return default


def resolve_run_config(
    gan_dir: Path, cfg: GanConfig, given: set[str], world: int, faces: int | None = None, cpu: bool = False
) -> tuple[GanConfig, bool]:
    """This run's config: a new folder takes ``cfg`` resolved for ``faces`` real faces on a CPU or not (``cpu``);
    an existing one keeps its own, with the resumable options in ``given`` overridden; anything else that differs
    is refused."""
    path = gan_dir / CONFIG_FILE
    if not path.exists():
        try:
            return resolve_gan_config(cfg, world, faces, cpu), False
        except ValueError as e:
            raise FacelabError(str(e)) from e
    try:
        saved = json.loads(path.read_text())["gan"]
        old = GanConfig(**{"diffaug": "none", "checkpoint_precision": "fp32", **saved})  # runs from before these
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FacelabError(f"{path}: not a facelab generator config ({e})") from e
    if cfg.cfg == "by-size":  # the default picks a preset; the saved run names the one it picked
        given = given - {"cfg"}
    return resumed(old, cfg, given, RESUMABLE, gan_dir, "--out"), True


def pack_half(ck: checkpoint.Checkpoint) -> checkpoint.Checkpoint:
    """A copy of ``ck`` at about a third of its size: fp32 weights and buffers as fp16 (those beyond fp16's range
    stay fp32), Adam's second moments as bf16 (fp32's range: squared gradients can be far below fp16's), Adam's
    first moments left out where beta1 is 0 (the next step overwrites them). The live tensors are not touched."""
    model = {k: v.half() if _fits_fp16(v) else v for k, v in ck.model.items()}
    opts = {}
    for name, sd in ck.optimizers.items():
        beta1 = {i: g["betas"][0] for g in sd["param_groups"] for i in g["params"] if "betas" in g}
        state = {}
        for idx, st in sd["state"].items():
            st = {k: v for k, v in st.items() if not (k == "exp_avg" and beta1.get(idx) == 0.0)}
            if "exp_avg_sq" in st:
                st["exp_avg_sq"] = st["exp_avg_sq"].to(torch.bfloat16)
            state[idx] = st
        opts[name] = {**sd, "state": state}
    return checkpoint.Checkpoint(model, opts, {**ck.state, "checkpoint_precision": "half"})


def _fits_fp16(t: torch.Tensor) -> bool:
    """An fp32 tensor whose values fp16 holds (finite, within its range)."""
    if t.dtype != torch.float32 or t.numel() == 0:
        return False
    return bool(t.isfinite().all()) and float(t.abs().max()) <= FP16_MAX


def unpack_half(ck: checkpoint.Checkpoint) -> checkpoint.Checkpoint:
    """A checkpoint of :func:`pack_half` as fp32 weights and full Adam state (first moments back as zeros); any
    other checkpoint unchanged."""
    if ck.state.get("checkpoint_precision") != "half":
        return ck
    model = {k: v.float() if v.dtype in (torch.float16, torch.bfloat16) else v for k, v in ck.model.items()}
    opts = {}
    for name, sd in ck.optimizers.items():
        state = {}
        for idx, st in sd["state"].items():
            st = dict(st)
            if "exp_avg_sq" in st:
                st["exp_avg_sq"] = st["exp_avg_sq"].float()
                st.setdefault("exp_avg", torch.zeros_like(st["exp_avg_sq"]))
            state[idx] = st
        opts[name] = {**sd, "state": state}
    return checkpoint.Checkpoint(model, opts, ck.state)


class GanTrainer(RunLoop):
    """One generator run on one faceset; ``run`` (from RunLoop) trains until a limit and checkpoints."""

    curve_keys = ("G", "D")

    def __init__(
        self,
        faceset: str | Path,
        gan_dir: str | Path,
        cfg: GanConfig,
        given: set[str] | None = None,
        init_from: str | Path | None = None,
        on_saved: Callable[[GanTrainer], Any] | None = None,
    ) -> None:
        self.on_saved = on_saved  # called on the main process after every checkpoint (snapshot selection)
        self.dist = Dist()
        self.model_dir = Path(gan_dir)
        refuse_overlap({"faceset": faceset, "--init generator": init_from}, {"--out": self.model_dir})
        if self.dist.main:
            ensure_writable_dir(self.model_dir, "--out")
        self.reals = load_reals(faceset, saved_resolution(self.model_dir, cfg.resolution))
        self.cfg, resuming = resolve_run_config(
            self.model_dir, cfg, given or set(), self.dist.world, len(self.reals), self.dist.device.type == "cpu"
        )
        c = self.cfg
        if c.batch % self.dist.world:
            raise FacelabError(f"batch {c.batch} does not split over {self.dist.world} processes")
        if c.aug not in ("ada", "fixed", "noaug"):
            raise FacelabError(f"aug must be ada, fixed or noaug, not {c.aug!r}")
        if c.checkpoint_precision not in ("half", "fp32"):
            raise FacelabError(f"checkpoint precision must be half or fp32, not {c.checkpoint_precision!r}")
        try:
            self.policy = parse_policy(c.diffaug)
        except ValueError as e:
            raise FacelabError(str(e)) from e
        dev = self.dist.device
        torch.manual_seed(c.seed)
        g, d = build_networks(c)
        self.G, self.D = g.to(dev), d.to(dev)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.pipe = AugmentPipe(p=c.ada_p).to(dev) if c.aug != "noaug" else None
        self.ada = (
            AdaController(self.pipe, c.ada_target, c.ada_interval, c.ada_kimg, c.batch) if c.aug == "ada" else None
        )
        # fused Adam: one kernel for all parameters, and its step counter stays on the device (the default
        # implementation reads it on the host for every parameter); on this 2-core CPU it is ~7x faster too
        fused = dev.type in ("cuda", "cpu")
        self.opt_G = lazy_adam(self.G.parameters(), c.lr, c.pl_interval if c.pl_weight > 0 else 0, fused)
        self.opt_D = lazy_adam(self.D.parameters(), c.lr, c.r1_interval if c.gamma > 0 else 0, fused)
        self.pl_mean = torch.zeros((), device=dev)
        self.amp = autocast_dtype(c.precision, dev)
        self.log_every = LOG_EVERY_CUDA if dev.type == "cuda" else 1
        self._diffaug_gen = torch.Generator(device=dev) if self.policy else None
        self.iteration, self.history = 0, {}
        self._last = {"ada_p": float(c.ada_p)}  # the controller's latest p and r_t, logged every iteration
        if resuming:
            ck = self.load_checkpoint()
            if ck is not None:
                self.pl_mean.fill_(float(ck.state["pl_mean"]))
                self._last = dict(ck.state.get("ada_last", self._last))
                if self.ada is not None:
                    self.ada.load_state_dict(ck.state["ada"])
        elif init_from is not None:
            self._init_from(Path(init_from))
        self._preview_z: torch.Tensor | None = None
        if self.dist.main:
            log.info("generator: %s", self.settings())
            self.write_config()

    def _init_from(self, src: Path) -> None:
        """Fine-tuning: start from another run's G, D and G_ema (same architecture), fresh optimizers."""
        it = checkpoint.init_modules(src, {"G": self.G, "D": self.D, "G_ema": self.G_ema}, "generator")
        log.info("initialised from %s (iteration %s)", src, it)

    # --- RunLoop hooks -----------------------------------------------------------------------------------------

    @property
    def schedule(self) -> Schedule:
        return Schedule.of(self.cfg)

    def modules(self) -> dict[str, torch.nn.Module]:
        mods: dict[str, torch.nn.Module] = {"G": self.G, "D": self.D, "G_ema": self.G_ema}
        if self.pipe is not None:
            mods["augment_pipe"] = self.pipe
        return mods

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_G, "D": self.opt_D}

    def pack_checkpoint(self, ck: checkpoint.Checkpoint) -> checkpoint.Checkpoint:
        return pack_half(ck) if self.cfg.checkpoint_precision == "half" else ck

    def unpack_checkpoint(self, ck: checkpoint.Checkpoint) -> checkpoint.Checkpoint:
        return unpack_half(ck)

    def extra_state(self) -> dict[str, Any]:
        return {
            "gan": asdict(self.cfg),
            "kimg": self.kimg,
            "pl_mean": float(self.pl_mean),
            "ada": self.ada.state_dict() if self.ada is not None else None,
            "ada_last": self._last,
            "facelab_version": __version__,
        }

    def save(self) -> None:
        super().save()
        if self.dist.main and self.on_saved is not None:
            self.on_saved(self)

    def settings(self) -> str:
        """This run's :func:`settings_line` (its resolved config, faceset size and compute precision)."""
        return settings_line(self.cfg, len(self.reals), self.amp)

    def write_config(self) -> None:
        doc = {
            "gan": asdict(self.cfg),
            "facelab_version": __version__,
            "reals": len(self.reals),
            "settings": self.settings(),
            "param_counts": {"G": param_counts(self.G), "D": param_counts(self.D)},
        }
        write_atomic(self.model_dir / CONFIG_FILE, json.dumps(doc, indent=1).encode())

    def oom_hint(self) -> str:
        return f"batch {self.cfg.batch} at {self.cfg.resolution} px does not fit; try --batch {self.cfg.batch // 2}"

    def extra_scalars(self) -> dict[str, float]:
        return {"progress/kimg": self.kimg, "loss/pl_mean": float(self.pl_mean)}

    @property
    def kimg(self) -> float:
        return self.iteration * self.cfg.batch / 1000

    # --- data --------------------------------------------------------------------------------------------------

    def loader(self) -> Iterator[torch.Tensor]:
        """This rank's reals for iteration i, uint8 [B,3,R,R] (pinned for a non-blocking copy on CUDA): a pure
        function of (seed, i); x-flipped half the time with mirror. ``step`` scales them to [-1, 1]."""
        c, n = self.cfg, len(self.reals)
        it = self.iteration
        pin = self.dist.device.type == "cuda"
        while True:
            rng = np.random.default_rng([c.seed, it, 11])
            idx = rng.integers(0, n, c.batch)
            flip = rng.random(c.batch) < 0.5 if c.mirror else np.zeros(c.batch, bool)
            sl = _rank_slice(c.batch, self.dist)
            imgs = self.reals[idx[sl]]
            imgs = np.where(flip[sl, None, None, None], imgs[:, :, ::-1], imgs)
            batch = torch.from_numpy(np.ascontiguousarray(imgs.transpose(0, 3, 1, 2)))
            yield batch.pin_memory() if pin else batch
            it += 1

    # --- one iteration -----------------------------------------------------------------------------------------

    def _latents(self, n: int) -> torch.Tensor:
        """The global batch's latents (same on every rank, seeded per iteration, drawn on the device), this rank's
        slice."""
        z = torch.randn(n, self.G.z_dim, device=self.dist.device)
        return z[_rank_slice(n, self.dist)]

    def _generate(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """G on ``n`` (global) fresh latents with style mixing: a second latent fills the ws after a random
        crossover (drawn on the device: no host round trip). Every random draw is global-batch sized and sliced,
        so ranks split one process's batch."""
        ws = self.G.mapping(self._latents(n), update_emas=True)
        if self.cfg.style_mixing > 0:
            k, dev = ws.shape[1], ws.device
            cut = torch.randint(1, k, (), device=dev)
            cut = torch.where(torch.rand((), device=dev) < self.cfg.style_mixing, cut, torch.full_like(cut, k))
            ws2 = self.G.mapping(self._latents(n), update_emas=False)
            later = torch.arange(k, device=dev)[None, :, None] >= cut
            ws = torch.where(later, ws2, ws)
        return self.G.synthesis(ws), ws

    def _reseed(self, phase: int) -> None:
        """Each phase starts from its own seed: the per-rank noise images that the synthesis layers draw then
        cannot shift the next phase's latents, so ranks stay in step with a one-process run."""
        torch.manual_seed(hash_seed(self.cfg.seed, self.iteration * 8 + phase))

    def _aug_generator(self, phase: int) -> torch.Generator:
        g = torch.Generator()
        g.manual_seed(hash_seed(self.cfg.seed, self.iteration * 64 + self.dist.rank * 4 + phase))
        return g

    def _diffaug_params(self, n: int, phase: int) -> torch.Tensor:
        """DiffAugment's uniforms for this rank's ``n`` images: the global batch's, drawn on the device from a
        generator seeded by (seed, iteration, phase), then sliced, so ranks augment as one process would."""
        assert self._diffaug_gen is not None
        self._diffaug_gen.manual_seed(hash_seed(self.cfg.seed, (self.iteration * 8 + phase) * 2 + 1))
        u = sample_params(n * self.dist.world, self.dist.device, self._diffaug_gen)
        return u[_rank_slice(n * self.dist.world, self.dist)]

    def _d(self, img: torch.Tensor, phase: int) -> torch.Tensor:
        """D on augmented images: DiffAugment, then ADA's pipe, each when on. Both are differentiable, so G's
        gradient and R1 pass through them; reals and fakes get the same transforms (with their own draws)."""
        if self.policy:
            img = apply_diff_augment(img, self._diffaug_params(img.shape[0], phase), self.policy)
        if self.pipe is not None:
            img = self.pipe(img.float(), generator=self._aug_generator(phase))
        return self.D(img).float()

    def _autocast(self) -> torch.autocast:
        dev = self.dist.device
        return torch.autocast(dev.type, dtype=self.amp or torch.float32, enabled=self.amp is not None)

    def step(self, batch: torch.Tensor) -> dict[str, float | torch.Tensor]:
        """One iteration on a uint8 batch of reals; the losses come back as 0-dim tensors (``RunLoop`` reads them
        every ``log_every`` iterations). Nothing here reads a device value on the host unless ADA is on."""
        c, dev = self.cfg, self.dist.device
        real = batch.to(dev, non_blocking=True).float() / 127.5 - 1
        b = c.batch
        scal: dict[str, float | torch.Tensor] = {}

        # G main (+ lazy path-length regularisation)
        self.G.requires_grad_(True)
        self.D.requires_grad_(False)
        self._reseed(0)
        with self._autocast():
            fake, _ = self._generate(b)
            loss_g = losses.g_nonsaturating_loss(self._d(fake, 0))
        self.opt_G.zero_grad(set_to_none=True)
        loss_g.backward()
        scal["G"] = loss_g.detach()
        if c.pl_weight > 0 and self.iteration % c.pl_interval == 0:
            scal["pl"] = self._path_length_step(max(self.dist.world, b // 2))
        _sanitize_grads(list(self.G.parameters()), self.dist)
        self.opt_G.step()

        # D main (+ lazy R1)
        self.G.requires_grad_(False)
        self.D.requires_grad_(True)
        self._reseed(2)
        with torch.no_grad(), self._autocast():
            fake, _ = self._generate(b)
        with self._autocast():
            logits_fake = self._d(fake.detach(), 1)
            logits_real = self._d(real, 2)
            loss_d = losses.d_logistic_loss(logits_real, logits_fake)
        self.opt_D.zero_grad(set_to_none=True)
        loss_d.backward()
        scal["D"] = loss_d.detach()
        scal["D_real"] = logits_real.detach().mean()
        scal["D_fake"] = logits_fake.detach().mean()
        if c.gamma > 0 and self.iteration % c.r1_interval == 0:
            scal["r1"] = self._r1_step(real)
        _sanitize_grads(list(self.D.parameters()), self.dist)
        self.opt_D.step()

        self._update_ema()
        if self.ada is not None:
            self.ada.accumulate(torch.nan_to_num(self._all_ranks(logits_real.detach())))
            adj = self.ada.step()
            if adj is not None:
                self._last = {k: float(v) for k, v in adj.items()}
        scal.update(self._last)
        if self.ada is None and self.pipe is not None:
            scal["ada_p"] = float(c.ada_p)
        return scal

    def _path_length_step(self, n: int) -> torch.Tensor:
        """Path-length regularisation on ``n`` (global) latents: |J_w^T y| should stay at its running mean. The
        first gradient is taken w.r.t. the ws alone (no weight gradients), the penalty's backward reaches G."""
        c, r = self.cfg, self.cfg.resolution
        self._reseed(1)
        y = torch.randn(n, 3, r, r, device=self.dist.device)[_rank_slice(n, self.dist)] / r  # unit-norm per pixel
        with self._autocast():
            img, ws = self._generate(n)
        lengths = losses.path_lengths(img.float(), ws, y)
        new_mean = losses.path_length_mean(self.pl_mean, self._all_ranks(lengths.detach()))
        self.pl_mean.copy_(torch.where(new_mean.isfinite(), new_mean, self.pl_mean))  # a NaN step leaves it be
        penalty = losses.path_length_penalty(lengths, self.pl_mean)
        losses.path_length_loss(penalty, c.pl_weight, c.pl_interval).backward()
        return penalty.detach()

    def _r1_step(self, real: torch.Tensor) -> torch.Tensor:
        """R1 on the un-augmented reals (the gradient flows back through the augmentations); the first gradient is
        taken w.r.t. the images alone (no weight gradients), the penalty's backward reaches D."""
        c = self.cfg
        x = real.detach().requires_grad_(True)
        with self._autocast():
            logits = self._d(x, 3)
        penalty = losses.r1_penalty(x, logits)
        losses.r1_loss(penalty, c.gamma, c.r1_interval).backward()
        return penalty.detach()

    def _all_ranks(self, t: torch.Tensor) -> torch.Tensor:
        if self.dist.world == 1:
            return t
        parts = [torch.empty_like(t) for _ in range(self.dist.world)]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts)

    @torch.no_grad()
    def _update_ema(self) -> None:
        c = self.cfg
        ema_nimg = c.ema_kimg * 1000
        if c.ema_rampup > 0:
            ema_nimg = min(ema_nimg, (self.iteration + 1) * c.batch * c.ema_rampup)
        beta = 0.5 ** (c.batch / max(ema_nimg, 1e-8))
        # p_ema <- p + beta (p_ema - p), all parameters in one kernel launch per step (foreach)
        torch._foreach_lerp_(list(self.G_ema.parameters()), list(self.G.parameters()), 1.0 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # --- previews ----------------------------------------------------------------------------------------------

    def preview(self) -> None:
        """Fixed latents through G_ema at truncation 1 and 0.7 next to real faces, as preview.png and one PNG per
        preview under previews/ (so progress can be flipped through)."""
        if self._preview_z is None:
            rng = np.random.default_rng(PREVIEW_SEED)
            self._preview_z = torch.from_numpy(rng.standard_normal((8, self.G.z_dim)).astype(np.float32))
        z = self._preview_z.to(self.dist.device)
        with torch.no_grad():
            full = self.G_ema(z, truncation_psi=1.0, noise_mode="const")
            trunc = self.G_ema(z, truncation_psi=0.7, noise_mode="const")
        pick = np.linspace(0, len(self.reals) - 1, 4).astype(int)
        real = torch.from_numpy(self.reals[pick].transpose(0, 3, 1, 2).copy()).float() / 255

        def unit(t: torch.Tensor) -> torch.Tensor:
            return (t.float().cpu() + 1) / 2

        rows = [real, unit(full[:4]), unit(full[4:]), unit(trunc[:4]), unit(trunc[4:])]
        labels = ["real", "psi 1", "psi 1", "psi 0.7", "psi 0.7"]
        png = preview_grid_png(rows, labels, self.iteration)
        write_atomic(self.model_dir / "preview.png", png)
        (self.model_dir / "previews").mkdir(exist_ok=True)
        write_atomic(self.model_dir / "previews" / f"iter_{self.iteration:08d}.png", png)


def settings_line(c: GanConfig, reals: int, amp: torch.dtype | None) -> str:
    """The resolved config in one line: which preset and why, the settings the small-data preset changes, and the
    compute precision (``amp``: the autocast dtype, None = fp32)."""
    why = ""
    if c.cfg == "small":
        why = f" (fewer than {GAN_SMALL_DATA_FACES} real faces: {reals})"
    elif c.cfg == "auto" and reals >= GAN_SMALL_DATA_FACES:
        why = f" ({reals} real faces)"
    aug = {"ada": f"ADA target {c.ada_target:g}", "fixed": f"ADA fixed p {c.ada_p:g}", "noaug": "ADA off"}[c.aug]
    pl = f"path length {c.pl_weight:g} every {c.pl_interval}" if c.pl_weight > 0 else "path length off"
    return (
        f"cfg {c.cfg}{why} @ {c.resolution} px: batch {c.batch}, channels {c.channel_base}/{c.channel_max}, "
        f"mapping {c.mapping_layers}, lr {c.lr:g}, R1 gamma {c.gamma:.4g} every {c.r1_interval}, {pl}, "
        f"DiffAugment {c.diffaug}, {aug}, EMA {c.ema_kimg:g} kimg ramp {c.ema_rampup:g}, "
        f"style mixing {c.style_mixing:g}, {precision_label(c.precision, amp)}, checkpoint {c.checkpoint_precision}"
    )


# --- using a trained generator ---------------------------------------------------------------------------------


def load_generator(
    gan_dir: str | Path, device: str | torch.device = "cpu", snapshot: str = "best"
) -> tuple[Generator, GanConfig, str]:
    """The EMA generator of ``gan_dir`` (eval mode), its config, and an id naming it (folder or file + kimg).

    ``gan_dir`` is a training folder or a file written by :func:`export_generator`. In a folder, ``snapshot`` picks
    the best probed snapshot (``best``, where the run kept one; else the latest) or the latest checkpoint's."""
    gan_dir = Path(gan_dir)
    g, cfg, state = _generator_and_state(gan_dir, snapshot)
    stem = gan_dir.stem if gan_dir.is_file() else gan_dir.resolve().name
    name = re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-") or "gan"
    kimg = float(state.get("kimg", 0.0))
    return g.eval().requires_grad_(False).to(device), cfg, f"{name}-{kimg:.0f}kimg"


EXPORT_KIND = "facelab-generator"


def export_generator(gan_dir: str | Path, out: str | Path, half: bool = False, snapshot: str = "best") -> int:
    """Write the EMA generator of ``gan_dir`` (``snapshot`` as in :func:`load_generator`) alone (no D, no optimizer
    state) to one safetensors file with its config in the header: a quarter of the checkpoint, all that sampling
    needs. ``half`` stores fp16 weights (loaded back as fp32). Returns the file's size in bytes."""
    g, cfg, state = _generator_and_state(Path(gan_dir), snapshot)
    return write_generator(g, cfg, float(state.get("kimg", 0.0)), out, half=half)


def write_generator(
    g: Generator, cfg: GanConfig, kimg: float, out: str | Path, half: bool = False, extra: dict[str, str] | None = None
) -> int:
    """``g`` in the export format, atomically (``extra``: more header fields); the file's size in bytes."""
    tensors = {
        k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in g.state_dict().items()
    }
    meta = {
        **(extra or {}),
        "kind": EXPORT_KIND,
        "gan": json.dumps(asdict(cfg)),
        "kimg": str(float(kimg)),
        "facelab_version": __version__,
    }
    data = safetensors.torch.save(tensors, metadata=meta)
    write_atomic(out, data)
    return len(data)


def _generator_and_state(path: Path, snapshot: str = "latest") -> tuple[Generator, GanConfig, dict[str, Any]]:
    """G_ema rebuilt from a training folder (its best snapshot or latest checkpoint) or an exported file, its
    config, and the saved state (kimg, ...)."""
    if snapshot not in ("best", "latest"):
        raise FacelabError(f"snapshot must be best or latest, not {snapshot!r}")
    if path.is_file():
        weights, state = _read_export(path)
    elif snapshot == "best" and (path / BEST_FILE).is_file():
        weights, state = _read_export(path / BEST_FILE)
    else:
        weights, state = _read_checkpoint(path)
    try:
        cfg = GanConfig(**state["gan"])
    except (KeyError, TypeError) as e:
        raise FacelabError(f"{path}: not a generator checkpoint ({e})") from e
    g, _ = build_networks(cfg)
    try:
        g.load_state_dict(weights)
    except RuntimeError as e:
        raise FacelabError(f"{path}: weights do not fit their own config ({str(e).splitlines()[0]})") from e
    return g, cfg, state


def _read_checkpoint(gan_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    ck = checkpoint.require(gan_dir, "no trained generator here (run 'facelab augment train' first)")
    return checkpoint.submodule(ck.model, "G_ema"), ck.state


def _read_export(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An exported generator's fp32 weights and its state (config, kimg); a one-line error for anything else."""
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            names = f.keys()
            weights = {k: f.get_tensor(k) for k in names}
        state = {"gan": json.loads(meta["gan"]), "kimg": float(meta.get("kimg", 0.0))}
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file: say so in one line, naming it
        raise FacelabError(f"{path}: not a generator file ({type(e).__name__}: {str(e)[:120]})") from e
    if meta.get("kind") != EXPORT_KIND:
        raise FacelabError(f"{path}: not a generator file written by 'facelab augment export'")
    return {k: v.float() if v.is_floating_point() else v for k, v in weights.items()}, state


def generate_fn(g: Generator, noise_mode: str = "const") -> Callable[[Sequence[int], float], np.ndarray]:
    """``(seeds, psi) -> uint8 RGB (B, R, R, 3)``: seed s always gives the same face (z from seed s)."""
    dev = next(g.parameters()).device

    def generate(seeds: Sequence[int], psi: float) -> np.ndarray:
        z = np.stack([np.random.default_rng(int(s)).standard_normal(g.z_dim) for s in seeds]).astype(np.float32)
        with torch.no_grad():
            img = g(torch.from_numpy(z).to(dev), truncation_psi=psi, noise_mode=noise_mode)
        img = (img.float().clamp(-1, 1) + 1) * 127.5
        return img.round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    return generate
