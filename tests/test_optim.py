"""Optimisers: AdaBelief against a hand-written DFL update, bias correction, lr dropout, bit-exact resume, RMSprop."""

from __future__ import annotations

import copy
import io
import json
import math

import pytest
import torch

from facelab.train import optim as O


def _grads(n: int, shape: tuple[int, ...], seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g) for _ in range(n)]


def _run(opt: torch.optim.Optimizer, p: torch.Tensor, grads: list[torch.Tensor]) -> None:
    for g in grads:
        p.grad = g.clone()
        opt.step()


def _reference_adabelief(p0, grads, lr, b1, b2, eps, bias_correction):
    """The update written out in float64, one formula per line."""
    p, m, s = p0.double().clone(), torch.zeros_like(p0, dtype=torch.float64), torch.zeros_like(p0, dtype=torch.float64)
    for t, g in enumerate(grads, start=1):
        g = g.double()
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * (g - m) ** 2
        m_hat, s_hat = (m / (1 - b1**t), s / (1 - b2**t)) if bias_correction else (m, s)
        p = p - lr * m_hat / (torch.sqrt(s_hat) + eps)
    return p


@pytest.mark.parametrize("bias_correction", [False, True])
def test_adabelief_matches_reference(bias_correction: bool) -> None:
    p0 = torch.randn(4, 5, generator=torch.Generator().manual_seed(9))
    grads = _grads(3, (4, 5))
    p = torch.nn.Parameter(p0.clone())
    opt = O.AdaBelief([p], lr=1e-2, bias_correction=bias_correction)
    _run(opt, p, grads)
    ref = _reference_adabelief(p0, grads, 1e-2, 0.9, 0.999, 1e-6, bias_correction)
    torch.testing.assert_close(p.detach().double(), ref, rtol=1e-6, atol=1e-7)
    assert int(opt.state[p]["step"]) == 3


def test_adabelief_first_step_size_on_constant_gradient() -> None:
    lr = 1e-3
    g = torch.tensor([3.0, -0.5, 0.25, -40.0])  # |g| >> eps, so eps does not show
    for bc, expected in [(True, lr / 0.9), (False, lr * 0.1 / (0.9 * math.sqrt(0.001)))]:
        p = torch.nn.Parameter(torch.zeros(4))
        opt = O.AdaBelief([p], lr=lr, bias_correction=bc)
        _run(opt, p, [g])
        # ~lr (lr/b1) with bias correction; ~3.5 lr in DFL's uncorrected form. Always against the gradient.
        torch.testing.assert_close(p.detach(), -torch.sign(g) * expected, rtol=1e-3, atol=0)


def test_adabelief_minimises_a_quadratic() -> None:
    x = torch.nn.Parameter(torch.randn(20, generator=torch.Generator().manual_seed(0)))
    target = torch.linspace(-1, 1, 20)
    opt = O.AdaBelief([x], lr=1e-2)
    first = None
    for _ in range(300):
        opt.zero_grad()
        loss = ((x - target) ** 2).sum()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 1e-4 * first


def test_lr_dropout_freezes_about_70_percent_and_is_seeded() -> None:
    n = 20000

    def one_step(seed: int) -> torch.Tensor:
        p = torch.nn.Parameter(torch.zeros(n))
        opt = O.AdaBelief([p], lr=1e-3, lr_dropout=0.3, generator=torch.Generator().manual_seed(seed))
        _run(opt, p, [torch.ones(n)])
        return p.detach().clone()

    a, b, c = one_step(1), one_step(1), one_step(2)
    frozen = (a == 0).float().mean().item()
    assert frozen == pytest.approx(0.7, abs=0.02)  # 7 sigma
    moved = a[a != 0]
    torch.testing.assert_close(moved, torch.full_like(moved, -1e-3 / 0.9))  # kept elements take the full step
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_lr_dropout_uses_global_rng_without_generator() -> None:
    def one_step() -> torch.Tensor:
        torch.manual_seed(123)
        p = torch.nn.Parameter(torch.zeros(1000))
        _run(O.RMSprop([p], lr=1e-3, lr_dropout=0.3), p, [torch.ones(1000)])
        return p.detach().clone()

    a, b = one_step(), one_step()
    assert torch.equal(a, b)
    assert 0.6 < (a == 0).float().mean().item() < 0.8


def test_cosine_lr_factor_and_schedule() -> None:
    assert O.cosine_lr_factor(0, 500) == 1.0
    assert O.cosine_lr_factor(250, 500) == pytest.approx(0.0)
    assert O.cosine_lr_factor(125, 500) == pytest.approx(0.5)
    assert O.cosine_lr_factor(777, 0) == 1.0
    p = torch.nn.Parameter(torch.zeros(3))
    opt = O.AdaBelief([p], lr=1e-3, lr_cos_period=4)
    moves = []
    for g in _grads(4, (3,)):
        before = p.detach().clone()
        _run(opt, p, [g])
        moves.append((p.detach() - before).abs().sum().item())
    assert moves[0] > 0 and moves[1] > 0 and moves[3] > 0
    assert moves[2] == 0  # third step: it = 2 of period 4, factor 0


@pytest.mark.parametrize("name", ["adabelief", "rmsprop"])
def test_state_dict_resume_is_bit_exact(name: str) -> None:
    grads = _grads(7, (6, 7), seed=4)
    model = torch.nn.Linear(7, 6)
    kw = {"lr_dropout": 0.3, "lr_cos_period": 5, "generator": torch.Generator().manual_seed(5)}
    opt = O.make_optimizer(name, model.parameters(), 1e-2, **kw)

    def run(o: torch.optim.Optimizer, m: torch.nn.Module, gs: list[torch.Tensor]) -> None:
        for g in gs:
            m.weight.grad, m.bias.grad = g.clone(), g[:, 0].clone()
            o.step()

    run(opt, model, grads[:3])
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
    assert O.RNG_KEY in opt.state_dict()
    run(opt, model, grads[3:])

    buf.seek(0)
    saved = torch.load(buf)
    model2 = torch.nn.Linear(7, 6)
    model2.load_state_dict(saved["model"])
    opt2 = O.make_optimizer(name, model2.parameters(), 1e-2, **{**kw, "generator": torch.Generator().manual_seed(99)})
    opt2.load_state_dict(saved["opt"])
    run(opt2, model2, grads[3:])
    assert torch.equal(model.weight, model2.weight)
    assert torch.equal(model.bias, model2.bias)


def test_state_dict_is_tensors_and_json_friendly_options() -> None:
    p = torch.nn.Parameter(torch.zeros(3))
    opt = O.AdaBelief([p])
    _run(opt, p, [torch.ones(3)])
    sd = copy.deepcopy(opt.state_dict())
    st = sd["state"][0]
    assert set(st) == {"step", "exp_avg", "exp_avg_var"}
    assert all(isinstance(v, torch.Tensor) for v in st.values())
    assert st["step"].dtype == torch.int64 and st["step"].device.type == "cpu"
    group = {k: v for k, v in sd["param_groups"][0].items() if k != "params"}
    assert group == {
        "lr": 5e-5,
        "betas": (0.9, 0.999),
        "eps": 1e-6,
        "bias_correction": True,
        "lr_dropout": 1.0,
        "lr_cos_period": 0,
    }
    assert O.RNG_KEY not in sd  # no generator: the global RNG is the trainer's to save
    # The checkpoint stores param_groups as JSON (tuples come back as lists) and tensors via safetensors.
    sd["param_groups"] = json.loads(json.dumps(sd["param_groups"]))
    q = torch.nn.Parameter(p.detach().clone())
    opt2 = O.AdaBelief([q])
    opt2.load_state_dict(sd)
    _run(opt, p, [torch.ones(3)])
    _run(opt2, q, [torch.ones(3)])
    assert torch.equal(p, q)


def test_rmsprop_matches_torch_without_dropout() -> None:
    p0 = torch.randn(5, 3, generator=torch.Generator().manual_seed(6))
    grads = _grads(4, (5, 3), seed=7)
    a, b = torch.nn.Parameter(p0.clone()), torch.nn.Parameter(p0.clone())
    _run(O.RMSprop([a], lr=1e-3), a, grads)
    _run(torch.optim.RMSprop([b], lr=1e-3, alpha=0.9, eps=1e-6), b, grads)
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8)
    assert not torch.equal(a.detach(), p0)


def test_rmsprop_minimises_a_quadratic() -> None:
    x = torch.nn.Parameter(torch.full((10,), 3.0))
    opt = O.make_optimizer("RMSprop", [x], lr=1e-2)
    for _ in range(400):
        opt.zero_grad()
        (x**2).sum().backward()
        opt.step()
    assert x.abs().max().item() < 0.05


def test_make_optimizer_and_validation() -> None:
    p = torch.nn.Parameter(torch.zeros(2))
    opt = O.make_optimizer("adabelief", [p], 2e-5, 0.3, bias_correction=False)
    assert isinstance(opt, O.AdaBelief)
    assert opt.param_groups[0]["lr"] == 2e-5 and opt.param_groups[0]["lr_dropout"] == 0.3
    assert not opt.param_groups[0]["bias_correction"]
    with pytest.raises(ValueError, match="unknown optimizer"):
        O.make_optimizer("adam", [p], 1e-3, 1.0)
    with pytest.raises(ValueError):
        O.AdaBelief([p], lr_dropout=0.0)
    with pytest.raises(ValueError):
        O.RMSprop([p], alpha=1.0)


def test_params_without_grad_are_skipped_and_closure_runs() -> None:
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = O.AdaBelief([a, b], lr=0.1)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (a**2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == pytest.approx(2.0)
    assert torch.equal(b.detach(), torch.ones(2)) and b not in opt.state
    assert (a.detach() < 1).all()


def test_clip_grad_norm() -> None:
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([6.0, 8.0])
    norm = O.clip_grad_norm([p])
    assert norm.item() == pytest.approx(10.0)
    assert p.grad.norm().item() == pytest.approx(1.0, rel=1e-5)
