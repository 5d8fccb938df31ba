"""StyleGAN2-ADA's losses (facelab.augment.losses): hand-computed values, gradients, directions, the R1 of a linear
D, the path length of a linear G and the running-mean update."""

from __future__ import annotations

import math

import pytest
import torch

from facelab.augment import losses as L


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_g_nonsaturating_loss_values_gradient_and_direction() -> None:
    x = torch.tensor([[-1.0], [0.0], [2.0]], requires_grad=True)
    loss = L.g_nonsaturating_loss(x)
    assert loss.dim() == 0
    assert loss.item() == pytest.approx((_softplus(1.0) + math.log(2) + _softplus(-2.0)) / 3)
    loss.backward()
    torch.testing.assert_close(x.grad, -torch.sigmoid(-x.detach()) / 3)  # d softplus(-x)/dx = -sigmoid(-x)
    # the more D believes the fakes, the lower G's loss; and it never saturates: confident rejection still pulls
    steps = [L.g_nonsaturating_loss(torch.full((4,), v)).item() for v in (-6.0, -2.0, 0.0, 2.0, 6.0)]
    assert steps == sorted(steps, reverse=True)
    assert -x.grad[0].item() * 3 > 0.7  # at D(fake) = -1 the gradient is sigmoid(1) ≈ 0.73 of its maximum


def test_d_logistic_loss_values_gradient_and_direction() -> None:
    real = torch.tensor([1.0, 3.0], requires_grad=True)
    fake = torch.tensor([-2.0, 0.5], requires_grad=True)
    loss = L.d_logistic_loss(real, fake)
    expected = (_softplus(-2.0) + _softplus(0.5)) / 2 + (_softplus(-1.0) + _softplus(-3.0)) / 2
    assert loss.item() == pytest.approx(expected)
    assert L.d_logistic_loss(torch.zeros(5), torch.zeros(5)).item() == pytest.approx(2 * math.log(2))
    loss.backward()
    torch.testing.assert_close(real.grad, -torch.sigmoid(-real.detach()) / 2)
    torch.testing.assert_close(fake.grad, torch.sigmoid(fake.detach()) / 2)
    r, f = torch.zeros(3), torch.zeros(3)
    assert L.d_logistic_loss(r + 1, f) < L.d_logistic_loss(r, f) < L.d_logistic_loss(r, f + 1)
    # the argument order matters: swapping real and fake is a different (worse) loss here
    assert L.d_logistic_loss(fake.detach(), real.detach()) > loss


def _linear_d(w: torch.Tensor, bias: float = 0.7) -> torch.nn.Module:
    class Linear(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(w.clone())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1) @ self.w.flatten() + bias

    return Linear()


def test_r1_of_a_linear_discriminator_is_half_gamma_times_squared_weight_norm() -> None:
    g = torch.Generator().manual_seed(0)
    d = _linear_d(torch.randn(3, 4, 4, generator=g))
    x = torch.rand(5, 3, 4, 4, generator=g).requires_grad_()
    penalty = L.r1_penalty(x, d(x))
    w2 = d.w.detach().square().sum()
    torch.testing.assert_close(penalty.detach(), w2)  # ∇_x (w·x + b) = w for every sample
    gamma = 0.8
    torch.testing.assert_close(L.r1_loss(penalty, gamma).detach(), gamma / 2 * w2)
    torch.testing.assert_close(L.r1_loss(penalty, gamma, interval=16).detach(), 16 * gamma / 2 * w2)
    # the graph is kept: the penalty differentiates w.r.t. D's weights, d/dw (gamma/2)||w||² = gamma·w
    L.r1_loss(penalty, gamma).backward()
    torch.testing.assert_close(d.w.grad, gamma * d.w.detach())


def test_r1_penalty_of_a_quadratic_discriminator_averages_over_the_batch() -> None:
    x = torch.tensor([[[[1.0, 2.0]]], [[[0.0, 3.0]]]], requires_grad=True)  # [2, 1, 1, 2]
    logits = (x**2).sum(dim=(1, 2, 3))  # ∇ = 2x: squared norms 4·5 = 20 and 4·9 = 36
    assert L.r1_penalty(x, logits).item() == pytest.approx(28.0)
    flat = torch.zeros(2, 1, 1, 2, requires_grad=True)
    assert L.r1_penalty(flat, (flat**2).sum(dim=(1, 2, 3))).item() == 0.0  # D flat at the reals: no penalty


def test_path_lengths_of_a_linear_generator() -> None:
    """img_b = Σ_n ws[b, n] · A: every one of the num_ws copies has the gradient A·y_b, so the length is |A·y_b|."""
    g = torch.Generator().manual_seed(1)
    a = torch.randn(6, 3, 4, 4, generator=g).requires_grad_()  # [w_dim, C, H, W]
    ws = torch.randn(2, 5, 6, generator=g).requires_grad_()  # [B, num_ws, w_dim]
    y = torch.randn(2, 3, 4, 4, generator=g) / 4
    img = torch.einsum("bnd,dchw->bchw", ws, a)
    lengths = L.path_lengths(img, ws, y)
    expected = torch.einsum("dchw,bchw->bd", a.detach(), y).norm(dim=1)
    torch.testing.assert_close(lengths.detach(), expected)
    # the graph is kept: the lengths differentiate w.r.t. G's weights
    lengths.sum().backward()
    assert a.grad is not None and a.grad.abs().sum() > 0


def test_path_length_running_mean_update_matches_the_formula() -> None:
    pl_mean = torch.tensor(1.0)
    lengths = torch.tensor([2.0, 4.0], requires_grad=True)
    new = L.path_length_mean(pl_mean, lengths)
    assert new.item() == pytest.approx(1.0 + 0.01 * (3.0 - 1.0))  # a + decay·(mean - a)
    assert pl_mean.item() == 1.0  # not updated in place: the caller keeps the state
    assert not new.requires_grad  # the target is a constant for the penalty
    assert L.path_length_mean(pl_mean, lengths, decay=0.5).item() == pytest.approx(2.0)
    a = torch.tensor(0.0, dtype=torch.float64)
    for _ in range(100):  # a steady length 5: a_n = 5·(1 - 0.99^n), an exponential average closing on it
        a = L.path_length_mean(a, torch.tensor([4.0, 6.0], dtype=torch.float64))
    assert a.item() == pytest.approx(5 * (1 - 0.99**100), rel=1e-12)


def test_path_length_penalty_and_loss() -> None:
    lengths = torch.tensor([1.0, 3.0, 2.0], requires_grad=True)
    penalty = L.path_length_penalty(lengths, torch.tensor(2.0))
    assert penalty.item() == pytest.approx((1 + 1 + 0) / 3)
    penalty.backward()
    torch.testing.assert_close(lengths.grad, torch.tensor([-2.0, 2.0, 0.0]) / 3)  # 2(l - a)/B: toward the mean
    assert L.path_length_loss(torch.tensor(0.5), 2.0, 4).item() == pytest.approx(4.0)
    assert L.path_length_loss(torch.tensor(0.5), 2.0).item() == pytest.approx(1.0)
