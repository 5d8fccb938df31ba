"""Training: a real loss goes down on real faces, resume is bit-exact, crashes never lose a model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from facelab.config import ExtractConfig, ModelConfig, TrainConfig
from facelab.errors import FacelabError
from facelab.extract.pipeline import extract
from facelab.io import checkpoint
from facelab.train.loop import Trainer

TINY = ModelConfig(archi="df-ud", resolution=64, face_type="full", ae_dims=32, e_dims=16, d_dims=16, d_mask_dims=8)
FAST = TrainConfig(batch=4, workers=0, precision="fp32", preview_every=0, autosave_minutes=1e9, seed=3)


def _variants(img: np.ndarray, n: int) -> list[np.ndarray]:
    """Small rotations / zooms of one photo: a faceset with some pose variety from a single public-domain image."""
    h, w = img.shape[:2]
    out = []
    for i in range(n):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), (-8 + 16 * i / max(1, n - 1)), 1.0 + 0.04 * (i % 3))
        out.append(cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT))
    return out


@pytest.fixture(scope="module")
def facesets(tmp_path_factory, hopper, astronaut) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fs")
    for name, img in (("src", hopper), ("dst", astronaut)):
        d = root / f"{name}_in"
        d.mkdir()
        for i, v in enumerate(_variants(img, 6)):
            cv2.imwrite(str(d / f"{name}{i}.jpg"), cv2.cvtColor(v, cv2.COLOR_RGB2BGR))
        s = extract(d, root / name, ExtractConfig(size=128, face_type="whole_face"))
        assert s.faces_written == 6
    return root / "src", root / "dst"


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / "checkpoint" / "model.safetensors"))


def test_training_reduces_reconstruction_loss(tmp_path, facesets):
    src, dst = facesets
    tr = Trainer(src, dst, tmp_path / "m", TINY, replace(FAST, lr=5e-4))
    res = tr.run(iterations=80)
    h = res.history
    assert np.mean(h["src"][-10:]) < 0.8 * np.mean(h["src"][:10])
    assert np.mean(h["dst"][-10:]) < 0.8 * np.mean(h["dst"][:10])
    for f in ("preview.png", "losses.png", "config.json"):
        assert (tmp_path / "m" / f).stat().st_size > 0
    assert cv2.imread(str(tmp_path / "m" / "preview.png")).shape[1] == 5 * 64
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["model"]["archi"] == "df-ud" and cfg["param_counts"]["total"] > 0


def test_tensorboard_scalars(tmp_path, facesets):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    Trainer(*facesets, tmp_path / "m", TINY, FAST).run(iterations=3)
    ev = EventAccumulator(str(tmp_path / "m" / "tensorboard"))
    ev.Reload()
    tags = ev.Tags()["scalars"]
    assert {"loss/src", "loss/dst", "lr", "speed/it_per_s"} <= set(tags)
    assert [e.step for e in ev.Scalars("loss/src")] == [1, 2, 3]


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_is_bit_exact(tmp_path, facesets, workers):
    cfg = replace(FAST, workers=workers, lr_dropout=0.3)  # lr dropout draws random masks: must be reproduced too
    Trainer(*facesets, tmp_path / "once", TINY, cfg).run(iterations=12)
    Trainer(*facesets, tmp_path / "twice", TINY, cfg).run(iterations=6)
    Trainer(*facesets, tmp_path / "twice", TINY, cfg).run(iterations=12)
    a, b = _weights(tmp_path / "once"), _weights(tmp_path / "twice")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ha = json.loads((tmp_path / "once" / "checkpoint" / "state.json").read_text())["history"]["src"]
    hb = json.loads((tmp_path / "twice" / "checkpoint" / "state.json").read_text())["history"]["src"]
    assert ha == hb


def _cli_train(src: Path, dst: Path, model: Path, iters: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "facelab.cli",
        "train",
        "--src",
        str(src),
        "--dst",
        str(dst),
        "--model",
        str(model),
        "--iters",
        str(iters),
        "--archi",
        "df-ud",
        "--resolution",
        "64",
        "--ae-dims",
        "32",
        "--e-dims",
        "16",
        "--d-dims",
        "16",
        "--d-mask-dims",
        "8",
        "--batch",
        "4",
        "--workers",
        "0",
        "--precision",
        "fp32",
        "--preview-every",
        "0",
        "--seed",
        "3",
    ]


def test_kill_9_then_resume_matches_uninterrupted_run(tmp_path, facesets):
    """N iterations in one go == N/2, then a run killed with SIGKILL part-way (autosaving constantly, so the kill
    may land inside a save), then resumed to N."""
    src, dst = facesets
    n = 40
    subprocess.run(_cli_train(src, dst, tmp_path / "once", n), check=True, capture_output=True)
    subprocess.run(_cli_train(src, dst, tmp_path / "k", n // 2), check=True, capture_output=True)
    autosave_often = ["--autosave-minutes", "0.001"]
    p = subprocess.Popen(
        _cli_train(src, dst, tmp_path / "k", n) + autosave_often, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    state_file = tmp_path / "k" / "checkpoint" / "state.json"
    deadline = time.monotonic() + 120
    while p.poll() is None and time.monotonic() < deadline:
        try:
            if json.loads(state_file.read_text())["iteration"] >= n // 2 + 5:
                break
        except (OSError, ValueError):
            pass  # between renames: exactly the state a kill may leave
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.wait()
    killed_at = checkpoint.load(tmp_path / "k").state["iteration"]
    assert n // 2 <= killed_at <= n
    subprocess.run(_cli_train(src, dst, tmp_path / "k", n), check=True, capture_output=True)
    a, b = _weights(tmp_path / "once"), _weights(tmp_path / "k")
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _tensorboard_steps(logdir: Path, tag: str) -> list[int]:
    """Steps of ``tag`` as TensorBoard shows them, from the raw event files in write order: a SessionLog START
    at step s (a resumed run's marker) hides every earlier event at step >= s."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.compat.proto.event_pb2 import SessionLog

    steps: list[int] = []
    for f in sorted(logdir.glob("events.out.tfevents.*")):
        for ev in EventFileLoader(str(f)).Load():
            if ev.HasField("session_log") and ev.session_log.status == SessionLog.START:
                steps = [s for s in steps if s < ev.step]
            steps += [ev.step for v in ev.summary.value if v.tag == tag]
    return steps


def test_kill_9_resumes_from_the_last_autosave_without_overlapping_tensorboard_steps(tmp_path, facesets):
    """Autosave by iterations (here every 10): a run killed with SIGKILL while its TensorBoard curves are ahead
    of its last save resumes from that save (not from 0), and the curves hold every step once."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert TrainConfig().autosave_minutes <= 3  # by default at most 3 minutes of work is lost
    src, dst = facesets
    model, every = tmp_path / "m", 10
    autosave = ["--autosave-iters", str(every), "--autosave-minutes", "1000"]
    p = subprocess.Popen(
        _cli_train(src, dst, model, 10_000) + autosave, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    state_file, deadline = model / "checkpoint" / "state.json", time.monotonic() + 60
    try:
        while p.poll() is None and time.monotonic() < deadline:
            try:
                saved = json.loads(state_file.read_text())["iteration"]
            except (OSError, ValueError):
                saved = 0
            if saved >= every and max(_tensorboard_steps(model / "tensorboard", "loss/src"), default=0) > saved:
                break  # curves on disk run ahead of the checkpoint: a kill now used to duplicate those steps
            time.sleep(0.02)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    saved = checkpoint.load(model).state["iteration"]
    assert saved >= every and saved % every == 0
    assert max(_tensorboard_steps(model / "tensorboard", "loss/src")) > saved
    r = subprocess.run(_cli_train(src, dst, model, saved + 3) + autosave, check=True, capture_output=True, text=True)
    assert f"starting at iteration {saved}" in r.stdout
    assert _tensorboard_steps(model / "tensorboard", "loss/src") == list(range(1, saved + 4))
    ev = EventAccumulator(str(model / "tensorboard"))  # what TensorBoard itself shows
    ev.Reload()
    assert [e.step for e in ev.Scalars("loss/src")] == list(range(1, saved + 4))


def test_crash_between_renames_leaves_a_loadable_checkpoint(tmp_path, facesets, monkeypatch):
    tr = Trainer(*facesets, tmp_path / "m", TINY, FAST)
    tr.run(iterations=2)
    real_replace = os.replace
    calls = []

    def crash_on_second(a, b):
        calls.append((a, b))
        if len(calls) == 2:  # old moved aside, new not yet in place: the worst moment
            raise KeyboardInterrupt("power cut")
        return real_replace(a, b)

    monkeypatch.setattr(checkpoint.os, "replace", crash_on_second)
    tr.iteration = 99
    with pytest.raises(KeyboardInterrupt):
        tr.save()
    monkeypatch.setattr(checkpoint.os, "replace", real_replace)
    ck = checkpoint.load(tmp_path / "m")
    assert ck is not None and ck.state["iteration"] == 2


def test_disk_full_during_save_keeps_old_checkpoint(tmp_path, facesets, monkeypatch):
    import errno

    import safetensors.torch

    tr = Trainer(*facesets, tmp_path / "m", TINY, FAST)
    tr.run(iterations=2)

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", full)
    with pytest.raises(FacelabError, match="out of disk space.*previous checkpoint is intact"):
        tr.save()
    monkeypatch.setattr(checkpoint, "save_file", safetensors.torch.save_file)
    assert checkpoint.load(tmp_path / "m").state["iteration"] == 2
    assert not (tmp_path / "m" / "checkpoint.tmp").exists()


def test_corrupt_checkpoint_falls_back_to_backup(tmp_path, facesets, caplog):
    cfg = replace(FAST, backup_every=2)
    Trainer(*facesets, tmp_path / "m", TINY, cfg).run(iterations=2)
    Trainer(*facesets, tmp_path / "m", TINY, cfg).run(iterations=3)
    (tmp_path / "m" / "checkpoint" / "model.safetensors").write_bytes(b"garbage")
    tr = Trainer(*facesets, tmp_path / "m", TINY, cfg)
    assert tr.iteration == 2
    assert any("corrupt checkpoint" in r.getMessage() for r in caplog.records)


def test_changing_fixed_options_on_resume_is_refused(tmp_path, facesets):
    Trainer(*facesets, tmp_path / "m", TINY, FAST).run(iterations=1)
    with pytest.raises(FacelabError, match="cannot change on resume: resolution 64 -> 96"):
        Trainer(*facesets, tmp_path / "m", replace(TINY, resolution=96), FAST, given={"resolution"})
    # resumable options may change
    tr = Trainer(*facesets, tmp_path / "m", TINY, replace(FAST, lr=1e-4, batch=2), given={"lr", "batch"})
    assert tr.tcfg.lr == 1e-4 and tr.tcfg.batch == 2 and tr.iteration == 1


def test_non_finite_loss_skips_the_step(tmp_path, facesets, caplog):
    tr = Trainer(*facesets, tmp_path / "m", TINY, FAST)
    tr.run(iterations=1)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    real = tr.model.forward

    def poisoned(src, dst, **kw):
        out = real(src, dst, **kw)
        out["pred_src_src"] = out["pred_src_src"] * float("nan")
        return out

    tr.model.forward = poisoned
    tr._ddp_model = tr.model
    tr.run(iterations=2)
    assert any("non-finite" in r.getMessage() or "nan" in r.getMessage().lower() for r in caplog.records)
    for k, v in tr.model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_bad_facesets(tmp_path, facesets):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FacelabError, match="faceset is empty"):
        Trainer(empty, facesets[1], tmp_path / "m", TINY, FAST)
    with pytest.raises(FacelabError, match="same faceset"):
        Trainer(facesets[0], facesets[0], tmp_path / "m2", TINY, FAST)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    cv2.imwrite(str(foreign / "x.jpg"), np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(FacelabError, match="not a facelab face"):
        Trainer(foreign, facesets[1], tmp_path / "m3", TINY, FAST)


def test_pretrain_then_finetune_resets_inters(tmp_path, facesets):
    src, dst = facesets
    pre = Trainer(src, src, tmp_path / "m", TINY, replace(FAST, pretrain=True))
    pre.run(iterations=2)
    enc = pre.model.encoder.state_dict()
    ft = Trainer(src, dst, tmp_path / "m", TINY, FAST, given={"pretrain"})
    assert ft.iteration == 0
    for k, v in ft.model.encoder.state_dict().items():  # encoder kept
        assert torch.equal(v, enc[k])


def test_pretrain_pools_src_folders_without_dst(tmp_path, facesets):
    """DFL's pretrain set from several people: --src A --src B --pretrain, no --dst; both sides draw from the pool."""
    src, dst = facesets
    pre = Trainer([src, dst], None, tmp_path / "m", TINY, replace(FAST, pretrain=True))
    assert pre.dst_bank is pre.src_bank and len(pre.src_bank) == 12
    pre.run(iterations=1)
    with pytest.raises(FacelabError, match="no dst faceset given"):
        Trainer(src, None, tmp_path / "m2", TINY, FAST)


def test_start_from_pretrained_copies_and_leaves_pretraining(tmp_path, facesets):
    from facelab.train.warm import start_from_pretrained

    src, dst = facesets
    pre = Trainer([src, dst], None, tmp_path / "pre", TINY, replace(FAST, pretrain=True))
    pre.run(iterations=2)
    enc = pre.model.encoder.state_dict()
    start_from_pretrained(tmp_path / "pre", tmp_path / "pair", TINY)
    assert not (tmp_path / "pair.partial").exists()
    ft = Trainer(src, dst, tmp_path / "pair", TINY, FAST, given={"pretrain"})
    assert ft.iteration == 0 and not ft.tcfg.pretrain
    for k, v in ft.model.encoder.state_dict().items():
        assert torch.equal(v, enc[k])
    ft.run(iterations=1)  # the pretrained folder is untouched by the pair's training
    assert Trainer([src, dst], None, tmp_path / "pre", TINY, replace(FAST, pretrain=True)).iteration == 2


def test_start_from_pretrained_refuses(tmp_path, facesets):
    from facelab.train.warm import start_from_pretrained

    src, dst = facesets
    Trainer(src, dst, tmp_path / "plain", TINY, FAST).run(iterations=1)
    with pytest.raises(FacelabError, match="plain: not a pretrained model"):
        start_from_pretrained(tmp_path / "plain", tmp_path / "a", TINY)
    Trainer(src, None, tmp_path / "pre", TINY, replace(FAST, pretrain=True)).run(iterations=1)
    with pytest.raises(FacelabError, match="pretrained with other model options: ae_dims 32 \\(wanted 48\\)"):
        start_from_pretrained(tmp_path / "pre", tmp_path / "b", replace(TINY, ae_dims=48))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x").write_text("")
    with pytest.raises(FacelabError, match="c: not empty"):
        start_from_pretrained(tmp_path / "pre", tmp_path / "c", TINY)
    with pytest.raises(FacelabError, match="nothing: not a facelab model folder"):
        start_from_pretrained(tmp_path / "nothing", tmp_path / "d", TINY)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_train_needs_dst_unless_pretraining(tmp_path, facesets):
    from facelab.cli import main

    src, _ = facesets
    assert main(["train", "--src", str(src), "--model", str(tmp_path / "m")]) != 0
    args = ["train", "--src", str(src), "--model", str(tmp_path / "p"), "--pretrain", "--iters", "1"]
    tiny = ["--archi", "df-ud", "--resolution", "64", "--ae-dims", "32", "--e-dims", "16", "--d-dims", "16"]
    assert main([*args, *tiny, "--d-mask-dims", "8", "--batch", "2", "--workers", "0", "--preview-every", "0"]) == 0


def test_cli_dry_run_prints_param_counts(capsys):
    from facelab.cli import main

    assert main(["train", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "liae-ud @ 128" in out and "82,376,555" in out


def test_torchrun_ddp_matches_one_process(tmp_path, facesets):
    """torchrun with 2 CPU processes (gloo) follows the same loss trajectory as 1 process with the same global batch."""
    src, dst = facesets
    one = _cli_train(src, dst, tmp_path / "one", 6)
    subprocess.run(one, check=True, capture_output=True)
    ddp = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", *one[2:]]
    ddp[ddp.index(str(tmp_path / "one"))] = str(tmp_path / "ddp")
    r = subprocess.run(ddp, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    h1 = json.loads((tmp_path / "one" / "checkpoint" / "state.json").read_text())["history"]
    h2 = json.loads((tmp_path / "ddp" / "checkpoint" / "state.json").read_text())["history"]
    for key in ("src", "dst"):
        np.testing.assert_allclose(h2[key], h1[key], rtol=2e-3)
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "ddp")
    for k in a:  # all-reduce sums in another order; the optimizer's 1/sqrt(s) amplifies the last bits a little
        assert (b[k] - a[k]).abs().max() < 1e-3, k
        assert (b[k] - a[k]).abs().mean() <= 0.02 * a[k].abs().mean() + 1e-7, k


def test_export_torchscript_from_model_dir(tmp_path, facesets, capsys):
    from facelab.cli import main
    from facelab.models.load import load_model

    Trainer(*facesets, tmp_path / "m", TINY, FAST).run(iterations=1)
    assert main(["export", "--model", str(tmp_path / "m"), "-o", str(tmp_path / "swap.pt")]) == 0
    ts = torch.jit.load(str(tmp_path / "swap.pt"))
    model, _ = load_model(tmp_path / "m")
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        for got, want in zip(ts(x), model.swap(x)):
            torch.testing.assert_close(got, want)


@pytest.mark.parametrize(
    "options",
    [
        {"gan_power": 0.1},
        {"true_face_power": 0.01},
        {"face_style_power": 1.0, "bg_style_power": 1.0},
        {"eyes_mouth_prio": True, "blur_out_mask": True, "uniform_yaw": True, "ct_mode": "lct", "clip_grad": 1.0},
        {"random_hsv_power": 0.1, "degrade_prob": 0.5, "optimizer": "rmsprop", "lr_dropout": 0.3},
    ],
    ids=["gan", "true_face", "styles", "priorities", "augment"],
)
def test_optional_losses_and_options_train(tmp_path, facesets, options):
    tr = Trainer(*facesets, tmp_path / "m", TINY, replace(FAST, **options))
    res = tr.run(iterations=3)
    expect = {"gan": ("gan", "gan_d"), "true_face": ("true_face", "code_d"), "face_style": ("face_style", "bg_style")}
    for opt, keys in expect.items():
        if any(k.startswith(opt) for k in options):
            for k in keys:
                assert len(res.history[k]) == 3 and np.isfinite(res.history[k]).all(), k
    assert np.isfinite(res.history["src"]).all()
    # the discriminators are checkpointed with the model, so a resume continues them too
    if "gan_power" in options:
        assert any(k.startswith("gan_d.") for k in _weights(tmp_path / "m"))


def test_liae_without_random_warp_freezes_inter_ab(tmp_path, facesets):
    liae = replace(TINY, archi="liae-ud")
    tr = Trainer(*facesets, tmp_path / "m", liae, replace(FAST, random_warp=False))
    before = {k: v.clone() for k, v in tr.model.inter_AB.state_dict().items()}
    tr.run(iterations=2)
    for k, v in tr.model.inter_AB.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_ada_in_the_swap_trainer(tmp_path, facesets):
    """--ada: what the GAN discriminator sees is augmented with an adaptive p, logged, and resumed exactly."""
    with pytest.raises(FacelabError, match="needs --gan-power"):
        Trainer(*facesets, tmp_path / "x", TINY, replace(FAST, ada=True))
    tr = Trainer(*facesets, tmp_path / "m", TINY, replace(FAST, gan_power=0.1, ada=True))
    tr.ada.interval, tr.ada.kimg = 1, 0.004  # adjust every step, by batch / 4 images: p visibly moves
    res = tr.run(iterations=3)
    p = res.history["ada_p"]
    assert len(p) == 3 and len(res.history["ada_rt"]) == 3 and all(0 <= v <= 1 for v in p)
    state = json.loads((tmp_path / "m" / "checkpoint" / "state.json").read_text())
    assert state["ada"]["p"] == pytest.approx(float(tr.ada_pipe.p))
    again = Trainer(*facesets, tmp_path / "m", TINY, replace(FAST, gan_power=0.1, ada=True))
    assert float(again.ada_pipe.p) == pytest.approx(p[-1])


def test_synthetic_faces_can_be_excluded(tmp_path, facesets):
    import shutil

    from facelab.faceset.store import read_face, write_face

    src = tmp_path / "src"
    shutil.copytree(facesets[0], src)
    first = sorted(src.glob("*.jpg"))[0]
    img, meta = read_face(first)
    meta.synthetic = True
    write_face(src / "synthetic_g_000001.jpg", img, meta)
    used = Trainer(src, facesets[1], tmp_path / "a", TINY, FAST)
    assert used.src_bank.synthetic == 1 and len(used.src_bank) == 7
    kept_out = Trainer(src, facesets[1], tmp_path / "b", TINY, replace(FAST, synthetic_faces="exclude"))
    assert kept_out.src_bank.synthetic == 0 and len(kept_out.src_bank) == 6
    with pytest.raises(FacelabError, match="synthetic_faces"):
        Trainer(src, facesets[1], tmp_path / "c", TINY, replace(FAST, synthetic_faces="maybe"))


def test_budget_schedule_resumes_bit_exact_and_ends_without_warp(tmp_path, facesets):
    from facelab.runs.plan import budget_lr_factor

    cfg = replace(FAST, lr_schedule="budget", final_no_warp=0.25, plan_iters=12, lr=1e-3)
    once = Trainer(*facesets, tmp_path / "once", TINY, cfg)
    once.run(iterations=12)
    assert once._warp_until == 9  # the last quarter of the 12-iteration plan draws unwarped faces
    assert once.opt.param_groups[0]["lr"] == pytest.approx(1e-3 * budget_lr_factor(11 / 12))
    Trainer(*facesets, tmp_path / "twice", TINY, cfg).run(iterations=7)  # a snapshot of the same plan
    Trainer(*facesets, tmp_path / "twice", TINY, cfg).run(iterations=12)
    a, b = _weights(tmp_path / "once"), _weights(tmp_path / "twice")
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_counter_sampler_turns_warp_off_from_an_iteration():
    from facelab.train.samples import CounterBatchSampler

    s = CounterBatchSampler(2, start_iter=3)
    s.warp_until = 4
    batches = iter(s)
    assert next(batches) == [(6, True), (7, True)] and next(batches) == [(8, False), (9, False)]


def test_ctrl_c_stops_at_the_next_iteration_and_saves(tmp_path, facesets):
    """SIGINT only asks the loop to stop (it cannot land inside an import, a preview or a save); the run ends at
    the next iteration boundary, saved, and the previous SIGINT handler is back."""
    import signal

    src, dst = facesets
    trainer = Trainer(src, dst, tmp_path / "m", TINY, FAST)
    sent: list[int] = []

    def progress(_: object) -> None:
        if not sent:
            sent.append(trainer.iteration)
            os.kill(os.getpid(), signal.SIGINT)

    # Python's own Ctrl+C handler, as in a terminal (an earlier test in this process may have left SIGINT ignored)
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        res = trainer.run(iterations=200, progress=progress)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, outer)
    assert res.stopped == "interrupted" and res.iteration <= sent[0] + 2
    assert _weights(tmp_path / "m")
