"""Issue 15: the small-data generator preset, DiffAugment in the training step, a step without host syncs, the cheap
double backward of R1 and path length, half-precision checkpoints (size and resume), deferred non-finite handling,
and the samples' diversity figure."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from facelab.augment import losses
from facelab.augment.networks import (
    DIFFAUG_POLICY,
    LOW_SHOT_GAMMA_SCALE,
    choose_cfg,
    gamma_scale,
    resolve_gan_config,
)
from facelab.augment.trainer import GanTrainer, pack_half, settings_line, unpack_half
from facelab.config import GAN_SMALL_DATA_FACES, GanConfig
from facelab.evaluate.metrics import mean_pairwise_distance
from facelab.faceset.meta import FaceMeta
from facelab.faceset.store import write_face
from facelab.io import checkpoint
from facelab.models.precision import autocast_dtype

# the small preset at 32 px with narrow channels: a few iterations take about a second here
TINY_SMALL = GanConfig(
    resolution=32,
    cfg="small",
    z_dim=32,
    w_dim=32,
    channel_base=256,
    channel_max=32,
    batch=4,
    mbstd_group=2,
    r1_interval=2,
    preview_every=0,
    autosave_minutes=1e9,
    seed=3,
    precision="fp32",
)


@pytest.fixture(scope="module")
def faceset(tmp_path_factory, hopper) -> Path:
    root = tmp_path_factory.mktemp("gan_small") / "faces"
    root.mkdir()
    face = cv2.resize(hopper[40:340, 90:390], (64, 64), interpolation=cv2.INTER_AREA)
    lmk = np.zeros((68, 2))
    meta = FaceMeta("whole_face", 64, lmk, lmk, np.eye(2, 3), np.eye(2, 3), "x", (64, 64), (0, 0, 64, 64))
    for i in range(6):
        m = cv2.getRotationMatrix2D((32, 32), -6 + 2.4 * i, 1.0 + 0.02 * i)
        write_face(root / f"real{i}.jpg", cv2.warpAffine(face, m, (64, 64), borderMode=cv2.BORDER_REFLECT), meta)
    return root


# --- the preset --------------------------------------------------------------------------------------------------


def test_by_size_picks_small_below_5000_faces_and_explicit_cfgs_are_unchanged():
    assert choose_cfg("by-size", GAN_SMALL_DATA_FACES - 1) == "small"
    assert choose_cfg("by-size", GAN_SMALL_DATA_FACES) == "auto"
    assert choose_cfg("by-size", None) == "auto" and choose_cfg("cpu", 10) == "cpu"
    small = resolve_gan_config(GanConfig(resolution=128), faces=300)
    assert small.cfg == "small"
    assert (small.mapping_layers, small.channel_base, small.channel_max, small.batch) == (2, 4096, 256, 32)
    assert (small.aug, small.diffaug, small.pl_weight) == ("noaug", "color,translation,cutout", 0.0)
    assert (small.ema_kimg, small.ema_rampup, small.ada_target, small.lr) == (10.0, 0.05, 0.6, 0.0025)
    assert small.gamma == pytest.approx(0.0002 * 128**2 / 32 * gamma_scale(300))
    # --cfg auto (and every other preset) is what it was: ADA, path length, no DiffAugment, the paper's widths
    for name in ("auto", "cpu", "stylegan2", "paper256"):
        c = resolve_gan_config(GanConfig(resolution=128, cfg=name), faces=300)
        assert (c.cfg, c.aug, c.diffaug, c.pl_weight) == (name, "ada", "none", 2.0)
    auto = resolve_gan_config(GanConfig(resolution=128, cfg="auto"))
    assert (auto.channel_base, auto.channel_max, auto.gamma) == (16384, 512, pytest.approx(0.1024))
    # what the user sets wins over the preset
    mine = resolve_gan_config(GanConfig(cfg="small", pl_weight=2.0, aug="ada", diffaug="translation", gamma=1.5))
    assert (mine.pl_weight, mine.aug, mine.diffaug, mine.gamma) == (2.0, "ada", "translation", 1.5)
    with pytest.raises(ValueError, match="unknown op"):
        resolve_gan_config(GanConfig(diffaug="colour"))


def test_small_on_a_cpu_takes_the_cpu_widths_and_batch_8_unless_set():
    cpu = resolve_gan_config(GanConfig(resolution=64), faces=1008, cpu=True)
    assert cpu.cfg == "small" and (cpu.channel_base, cpu.channel_max, cpu.batch) == (2048, 128, 8)
    assert cpu.precision == "auto" and (cpu.aug, cpu.diffaug, cpu.pl_weight) == ("noaug", DIFFAUG_POLICY, 0.0)
    # batch-derived fields follow batch 8, as with --batch 8 given: the settings of the 54-minute CPU run
    given = resolve_gan_config(
        GanConfig(resolution=64, cfg="small", channel_base=2048, channel_max=128, batch=8), faces=1008
    )
    assert cpu == given
    assert (cpu.gamma, cpu.ema_kimg, cpu.mbstd_group) == (pytest.approx(0.0002 * 64**2 / 8 * gamma_scale(1008)), 2.5, 4)
    # the same call off a CPU: small's own widths
    gpu = resolve_gan_config(GanConfig(resolution=64), faces=1008)
    assert (gpu.channel_base, gpu.channel_max, gpu.batch) == (4096, 256, 32)
    # what the user sets wins; other presets do not change on a CPU; the batch splits over processes
    mine = resolve_gan_config(GanConfig(resolution=64, channel_max=256, batch=16), 1, 1008, True)
    assert (mine.channel_base, mine.channel_max, mine.batch) == (2048, 256, 16)
    auto = resolve_gan_config(GanConfig(resolution=64, cfg="auto"), faces=1008, cpu=True)
    assert (auto.channel_base, auto.batch) == (16384, 32)
    assert resolve_gan_config(GanConfig(resolution=64), world=3, faces=1008, cpu=True).batch == 6


def test_gamma_grows_as_the_faceset_shrinks():
    assert gamma_scale(GAN_SMALL_DATA_FACES) == 1.0 and gamma_scale(10**6) == 1.0
    assert gamma_scale(100) == pytest.approx(LOW_SHOT_GAMMA_SCALE) == gamma_scale(5)
    assert pytest.approx(10 / 1.6384) == LOW_SHOT_GAMMA_SCALE  # DiffAugment's low-shot gamma over ADA's heuristic
    sizes = [4000, 2000, 1000, 500, 200]
    assert np.all(np.diff([gamma_scale(n) for n in sizes]) > 0)


def test_trainer_chooses_and_reports_small_for_a_small_faceset(tmp_path, faceset):
    t = GanTrainer(faceset, tmp_path / "g", replace(TINY_SMALL, cfg="by-size"))
    assert t.cfg.cfg == "small" and t.policy == ("color", "translation", "cutout") and t.pipe is None
    line = settings_line(t.cfg, len(t.reals), t.amp)
    assert "cfg small (fewer than 5000 real faces: 6)" in line and "DiffAugment color,translation,cutout" in line
    saved = json.loads((tmp_path / "g" / "config.json").read_text())
    assert saved["gan"]["cfg"] == "small" and saved["settings"] == line
    t.run(iterations=2)
    # --cfg by-size given again on resume: the saved choice stands, no "cannot change" error
    t2 = GanTrainer(faceset, tmp_path / "g", GanConfig(cfg="by-size"), given={"cfg"})
    assert t2.cfg.cfg == "small" and t2.iteration == 2
    # the defaults on a CPU: small at the cpu widths and batch 8, bf16 only where the CPU has it natively
    t3 = GanTrainer(faceset, tmp_path / "h", GanConfig(resolution=32, z_dim=32, w_dim=32, preview_every=0))
    c = t3.cfg
    assert (c.cfg, c.channel_base, c.channel_max, c.batch, c.precision) == ("small", 2048, 128, 8, "auto")
    assert t3.amp == autocast_dtype("auto", torch.device("cpu"))
    here = "bf16" if t3.amp == torch.bfloat16 else "fp32"
    line3 = settings_line(c, len(t3.reals), t3.amp)
    assert "channels 2048/128" in line3 and f"auto ({here} here)" in line3


# --- the step ----------------------------------------------------------------------------------------------------


class _Ops(TorchDispatchMode):
    """Counts aten ops; keeps the output masks of convolution_backward."""

    def __init__(self) -> None:
        super().__init__()
        self.count: Counter[str] = Counter()
        self.conv_masks: list[tuple[bool, ...]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count[str(func.overloadpacket)] += 1
        if func is torch.ops.aten.convolution_backward.default:
            self.conv_masks.append(tuple(args[-1]))
        return func(*args, **(kwargs or {}))


def test_d_sees_diffaugmented_reals_and_fakes_in_every_phase(tmp_path, faceset):
    t = GanTrainer(faceset, tmp_path / "g", replace(TINY_SMALL, diffaug="cutout"))
    seen: list[torch.Tensor] = []
    t.D.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    batch = next(iter(t.loader()))
    t.iteration = 0  # R1 runs at iteration 0 too
    t.step(batch)
    assert len(seen) == 4  # G step (fakes), D step (fakes, reals), R1 (reals)
    r = t.cfg.resolution
    for x in seen:
        zeros = (x == 0).all(dim=1).sum((1, 2))  # pixels zero in every channel, per image
        assert (zeros >= (r // 4) ** 2).all() and (zeros <= (r // 2) ** 2).all()
    real = batch.float() / 127.5 - 1
    assert not torch.equal(seen[2], real)  # the reals D scored were augmented ...
    kept = (seen[2] != 0).all(dim=1, keepdim=True).expand_as(real)
    assert torch.equal(seen[2][kept], real[kept])  # ... by cutout alone
    assert not torch.equal(seen[2], seen[3])  # each phase draws its own holes


def test_step_reads_nothing_back_from_the_device(tmp_path, faceset):
    """No .item()/float()/bool() of a tensor inside the step (each would be a host sync on CUDA), and the losses
    come back as tensors. ADA's pipe does read back; the spy sees that, so it would see the others."""
    t = GanTrainer(faceset, tmp_path / "g", TINY_SMALL)
    batch = next(iter(t.loader()))
    for it in (0, 1):  # with and without R1
        t.iteration = it
        with _Ops() as ops:
            scal = t.step(batch)
        synced = {k: ops.count[k] for k in ("aten._local_scalar_dense", "aten.is_nonzero", "aten.nonzero")}
        assert not any(synced.values()), (it, synced)  # nonzero: a data-dependent shape, a sync on CUDA
    assert isinstance(scal["G"], torch.Tensor) and scal["G"].dim() == 0
    ada = GanTrainer(faceset, tmp_path / "ada", replace(TINY_SMALL, aug="fixed", ada_p=0.5, pl_weight=2.0))
    with _Ops() as ops:
        ada.step(batch)
    assert ops.count["aten._local_scalar_dense"] > 0


def test_r1_and_path_length_first_pass_compute_no_weight_gradients(tmp_path, faceset):
    t = GanTrainer(faceset, tmp_path / "g", replace(TINY_SMALL, pl_weight=2.0))
    real = next(iter(t.loader())).float() / 127.5 - 1
    x = real.requires_grad_(True)
    t.D.requires_grad_(True)
    logits = t._d(x, 3)
    with _Ops() as first:
        penalty = losses.r1_penalty(x, logits)
    assert first.conv_masks and not any(m[1] for m in first.conv_masks)  # input gradients only
    with _Ops() as second:
        penalty.backward()
    assert any(m[1] for m in second.conv_masks)  # the penalty's backward does reach D's weights
    t.G.requires_grad_(True)
    img, ws = t._generate(2)
    with _Ops() as pl:
        lengths = losses.path_lengths(img, ws, torch.randn_like(img))
    assert pl.conv_masks and not any(m[1] for m in pl.conv_masks)
    lengths.sum().backward()
    assert t.G.synthesis.b8.conv0.weight.grad is not None


# --- checkpoints -------------------------------------------------------------------------------------------------


def _checkpoint_mib(d: Path) -> float:
    return sum(f.stat().st_size for f in (d / "checkpoint").iterdir()) / 2**20


def test_a_128px_small_checkpoint_is_under_60_mib(tmp_path, faceset):
    t = GanTrainer(faceset, tmp_path / "g", GanConfig(resolution=128, batch=4, preview_every=0))
    assert t.cfg.cfg == "small"
    for net, opt in ((t.G, t.opt_G), (t.D, t.opt_D)):  # Adam's state, as after a step
        for p in net.parameters():
            p.grad = torch.full_like(p, 1e-3)
        opt.step()
    t.save()
    size = _checkpoint_mib(tmp_path / "g")
    assert size < 60, size
    n = sum(p.numel() for m in (t.G, t.D, t.G_ema) for p in m.parameters())
    fp32 = (n + 2 * sum(p.numel() for m in (t.G, t.D) for p in m.parameters())) * 4  # weights + both moments
    assert size * 2**20 < 0.4 * fp32


def test_pack_half_leaves_live_state_alone_and_round_trips():
    p = torch.nn.Parameter(torch.randn(5, 3))
    opt = torch.optim.Adam([p], betas=(0.0, 0.99))
    p.grad = torch.randn(5, 3)
    opt.step()
    big = torch.full((2,), 1e6)  # beyond fp16: stays fp32
    ck = checkpoint.Checkpoint({"w": p.detach(), "big": big, "n": torch.tensor([3])}, {"G": opt.state_dict()}, {})
    packed = pack_half(ck)
    assert packed.model["w"].dtype == torch.float16 and packed.model["big"].dtype == torch.float32
    assert packed.model["n"].dtype == torch.int64
    st = packed.optimizers["G"]["state"][0]
    assert "exp_avg" not in st and st["exp_avg_sq"].dtype == torch.bfloat16
    assert opt.state[p]["exp_avg"].dtype == torch.float32 and "exp_avg" in opt.state_dict()["state"][0]  # live: kept
    back = unpack_half(packed)
    torch.testing.assert_close(back.model["w"], p.detach(), atol=2e-3, rtol=1e-3)
    st = back.optimizers["G"]["state"][0]
    assert st["exp_avg"].abs().sum() == 0 and st["exp_avg_sq"].dtype == torch.float32
    torch.testing.assert_close(st["exp_avg_sq"], opt.state[p]["exp_avg_sq"], rtol=1e-2, atol=0)
    opt2 = torch.optim.Adam([torch.nn.Parameter(back.model["w"].clone())], betas=(0.0, 0.99))
    opt2.load_state_dict(back.optimizers["G"])  # what a resume does
    assert unpack_half(ck) is ck  # an fp32 checkpoint is taken as it is


def test_half_checkpoint_resume_continues_training(tmp_path, faceset):
    a = GanTrainer(faceset, tmp_path / "g", TINY_SMALL)
    a.run(iterations=3)
    w = {k: v.detach().clone() for k, v in a.G.state_dict().items()}
    state = json.loads((tmp_path / "g" / "checkpoint" / "state.json").read_text())
    assert state["checkpoint_precision"] == "half"
    b = GanTrainer(faceset, tmp_path / "g", TINY_SMALL)
    assert b.iteration == 3 and b.kimg == pytest.approx(3 * 4 / 1000)
    for k, v in b.G.state_dict().items():
        assert v.dtype == w[k].dtype
        torch.testing.assert_close(v, w[k], atol=4e-3, rtol=1e-3)  # fp16 rounding
    assert all(len(s) >= 2 and "exp_avg" in s for s in b.opt_D.state.values())
    b.run(iterations=6)
    h = b.history
    assert b.iteration == 6 and len(h["G"]) == len(h["D"]) == 6 and len(h["r1"]) == 3
    assert np.isfinite(h["G"]).all() and np.isfinite(h["D"]).all() and np.isfinite(h["r1"]).all()
    assert "pl" not in h  # path length is off in the small preset


def test_non_finite_losses_zero_the_update_and_three_roll_back(tmp_path, faceset, caplog):
    t = GanTrainer(faceset, tmp_path / "g", replace(TINY_SMALL, checkpoint_precision="fp32"))
    t.run(iterations=2)  # a checkpoint to roll back to
    with torch.no_grad():
        t.D.b4.out.weight.fill_(float("nan"))
    g_before = t.G.synthesis.b8.conv1.weight.detach().clone()
    with caplog.at_level(logging.WARNING):
        t.run(iterations=5)
    assert not np.isfinite(t.history["G"][2:5]).any() and not np.isfinite(t.history["D"][2:5]).any()
    assert caplog.text.count("is not finite") == 3
    # the third non-finite step in a row restored the checkpoint of iteration 2; G never moved (NaN gradients
    # become 0, and Adam with beta1 = 0 then stands still)
    assert "restored the checkpoint of iteration 2" in caplog.text
    assert torch.isfinite(t.D.b4.out.weight).all()
    assert torch.equal(t.G.synthesis.b8.conv1.weight, g_before)
    t.run(iterations=6)
    assert np.isfinite(t.history["G"][5])


def test_losses_read_back_every_log_every_iterations(tmp_path, faceset):
    t = GanTrainer(faceset, tmp_path / "g", TINY_SMALL)
    t.log_every = 4  # what CUDA uses (20): history and progress still get every iteration
    seen = []
    t.run(iterations=6, progress=lambda s: seen.append((s["iteration"], s["G"])))
    assert [i for i, _ in seen] == [1, 2, 3, 4, 5, 6] and all(isinstance(g, float) for _, g in seen)
    assert len(t.history["G"]) == 6 and len(t.history["ms_per_iter"]) == 6


# --- diversity ---------------------------------------------------------------------------------------------------


def test_mean_pairwise_distance():
    assert mean_pairwise_distance(np.zeros((5, 128))) == 0.0  # one face for every latent
    v = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
    assert mean_pairwise_distance(v) == pytest.approx((5 + 4 + 3) / 3)
    assert np.isnan(mean_pairwise_distance(v[:1]))
    rng = np.random.default_rng(0)
    wide, narrow = rng.normal(size=(50, 128)), rng.normal(size=(50, 128)) * 0.1
    assert mean_pairwise_distance(wide) > 5 * mean_pairwise_distance(narrow)
