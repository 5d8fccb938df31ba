"""Optimisers: AdaBelief (DFL's default) and RMSprop, both with DFL's "lr dropout".

AdaBelief (Zhuang et al. 2020) as DFL runs it, per element::

    m = b1·m + (1-b1)·g
    s = b2·s + (1-b2)·(g - m)²          # m is the *new* m; eps is not added inside s (the paper adds it)
    p -= lr · m / (sqrt(s) + eps)

DFL has no bias correction (``bias_correction=False`` here reproduces it); we default to the corrected form
m/(1-b1^t), s/(1-b2^t). Without correction the first steps are *larger* than lr, not smaller: on a constant
gradient step 1 is lr·(1-b1)/(b1·sqrt(1-b2)) ≈ 3.5·lr; with correction it is lr/b1 ≈ 1.1·lr (s is measured around
the new m, which already holds (1-b1)·g).

**lr dropout** (``lr_dropout`` p < 1, DFL uses 0.3): each element's update is multiplied by a fresh Bernoulli(p)
mask every step, i.e. ~70 % of the weights stand still at each step. The mask is one random byte per element
compared with round(256·p) (0.3 keeps 77/256 = 30.1 %): eight elements per 64-bit draw cost a sixth of
``bernoulli_``, which took a third of a cpu-quick iteration on 2 cores. Masks come from ``generator`` if given (its
state is saved in :meth:`state_dict` under ``"lr_dropout_rng"``), else from the global RNG of the parameter's
device (the trainer seeds that per iteration). DFL's lr dropout also scales lr by (cos(2π·it/500)+1)/2; here that
is the separate ``lr_cos_period`` (500 to match, 0 = off), with it = the number of steps taken before this one.

All options live in ``param_groups`` and all state is tensors (``step`` is a CPU int64 tensor), so a state dict
splits cleanly into safetensors + JSON. Note that ``state_dict()`` returns live references (torch semantics):
serialise it or deep-copy it before stepping again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

RNG_KEY = "lr_dropout_rng"

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


def cosine_lr_factor(iteration: int, period: int) -> float:
    """(cos(2π·iteration/period) + 1) / 2, or 1 when ``period`` <= 0. Starts at 1, is 0 half-way through."""
    if period <= 0:
        return 1.0
    return (math.cos(2 * math.pi * iteration / period) + 1) / 2


def lr_dropout_mask(like: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """Boolean tensor shaped like ``like``, True (keep) at probability round(256·p)/256. Drawn on the generator's
    device (then moved) when a generator is given, so a CPU generator works for CUDA parameters (at a copy)."""
    device = like.device if generator is None else generator.device
    n = like.numel()
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 7) // 8,), dtype=torch.int64, generator=generator, device=device)
    keep = words.view(torch.uint8)[:n].view(like.shape) < round(256 * p)
    return keep.to(like.device, non_blocking=True)


class _DFLOptimizer(torch.optim.Optimizer):
    """Shared plumbing: option checks, per-parameter step counters, the step loop, lr dropout and its RNG state.
    A subclass names its state buffers in ``state_keys`` and computes the updates in ``_updates``."""

    state_keys: tuple[str, ...] = ()

    def __init__(self, params: ParamsT, defaults: dict[str, Any], generator: torch.Generator | None) -> None:
        if defaults["lr"] < 0:
            raise ValueError(f"lr must be >= 0 (got {defaults['lr']})")
        if not 0 < defaults["lr_dropout"] <= 1:
            raise ValueError(f"lr_dropout is a keep probability in (0, 1] (got {defaults['lr_dropout']})")
        if defaults["eps"] < 0:
            raise ValueError(f"eps must be >= 0 (got {defaults['eps']})")
        super().__init__(params, defaults)
        self.generator = generator

    def _collect(self, group: dict[str, Any], keys: tuple[str, ...]) -> tuple[list[Tensor], list[Tensor], list[int]]:
        """Parameters with gradients, their gradients and their (incremented) step counts; lazily creates state."""
        params, grads, steps = [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            st = self.state[p]
            if not st:
                st["step"] = torch.zeros((), dtype=torch.int64)  # CPU: reading it never syncs a GPU
                for k in keys:
                    st[k] = torch.zeros_like(p, memory_format=torch.preserve_format)
            st["step"] += 1
            params.append(p)
            grads.append(p.grad)
            steps.append(int(st["step"]))
        return params, grads, steps

    def _updates(
        self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], steps: list[int]
    ) -> list[Tensor]:
        """One group's parameter updates (before lr dropout); advances the per-parameter state."""
        raise NotImplementedError

    def _apply(self, group: dict[str, Any], params: list[Tensor], updates: list[Tensor]) -> None:
        if group["lr_dropout"] < 1.0:
            for u in updates:
                u.masked_fill_(~lr_dropout_mask(u, group["lr_dropout"], self.generator), 0.0)
        torch._foreach_add_(params, updates)

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, steps = self._collect(group, self.state_keys)
            if params:
                self._apply(group, params, self._updates(group, params, grads, steps))
        return loss

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        if self.generator is not None:
            sd[RNG_KEY] = self.generator.get_state()
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        rng = state_dict.pop(RNG_KEY, None)
        super().load_state_dict(state_dict)
        if rng is not None and self.generator is not None:
            self.generator.set_state(rng.detach().to("cpu", torch.uint8))


class AdaBelief(_DFLOptimizer):
    """AdaBelief with DFL's defaults (lr 5e-5, betas (0.9, 0.999), eps 1e-6 outside the square root); see the module
    docstring. ``bias_correction=False`` is DFL's exact update."""

    state_keys = ("exp_avg", "exp_avg_var")

    def __init__(
        self,
        params: ParamsT,
        lr: float = 5e-5,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        bias_correction: bool = True,
        lr_dropout: float = 1.0,
        lr_cos_period: int = 0,
        generator: torch.Generator | None = None,
    ) -> None:
        if not all(0 <= b < 1 for b in betas):
            raise ValueError(f"betas must be in [0, 1) (got {betas})")
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "bias_correction": bias_correction,
            "lr_dropout": lr_dropout,
            "lr_cos_period": lr_cos_period,
        }
        super().__init__(params, defaults, generator)

    def _updates(
        self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], steps: list[int]
    ) -> list[Tensor]:
        ms = [self.state[p]["exp_avg"] for p in params]
        ss = [self.state[p]["exp_avg_var"] for p in params]
        b1, b2 = group["betas"]
        torch._foreach_mul_(ms, b1)
        torch._foreach_add_(ms, grads, alpha=1 - b1)
        diff = torch._foreach_sub(grads, ms)  # the "belief" residual uses the updated m
        torch._foreach_mul_(ss, b2)
        torch._foreach_addcmul_(ss, diff, diff, value=1 - b2)
        denom = diff  # reuse the buffer
        torch._foreach_copy_(denom, ss)
        torch._foreach_sqrt_(denom)
        bc = group["bias_correction"]
        if bc:
            torch._foreach_div_(denom, [math.sqrt(1 - b2**t) for t in steps])
        torch._foreach_add_(denom, group["eps"])
        scale = [
            -group["lr"] * cosine_lr_factor(t - 1, group["lr_cos_period"]) / ((1 - b1**t) if bc else 1.0) for t in steps
        ]
        updates = torch._foreach_mul(ms, scale)
        torch._foreach_div_(updates, denom)
        return updates


class RMSprop(_DFLOptimizer):
    """RMSprop as DFL runs it: a = alpha·a + (1-alpha)·g², p -= lr·g / (sqrt(a) + eps), no momentum, no bias
    correction. Without lr dropout this is exactly ``torch.optim.RMSprop(lr, alpha=0.9, eps=1e-6)`` (torch also
    adds eps outside the square root), up to rounding."""

    state_keys = ("square_avg",)

    def __init__(
        self,
        params: ParamsT,
        lr: float = 5e-5,
        alpha: float = 0.9,
        eps: float = 1e-6,
        lr_dropout: float = 1.0,
        lr_cos_period: int = 0,
        generator: torch.Generator | None = None,
    ) -> None:
        if not 0 <= alpha < 1:
            raise ValueError(f"alpha must be in [0, 1) (got {alpha})")
        defaults = {"lr": lr, "alpha": alpha, "eps": eps, "lr_dropout": lr_dropout, "lr_cos_period": lr_cos_period}
        super().__init__(params, defaults, generator)

    def _updates(
        self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], steps: list[int]
    ) -> list[Tensor]:
        sq = [self.state[p]["square_avg"] for p in params]
        torch._foreach_mul_(sq, group["alpha"])
        torch._foreach_addcmul_(sq, grads, grads, value=1 - group["alpha"])
        denom = torch._foreach_sqrt(sq)
        torch._foreach_add_(denom, group["eps"])
        scale = [-group["lr"] * cosine_lr_factor(t - 1, group["lr_cos_period"]) for t in steps]
        updates = torch._foreach_mul(grads, scale)
        torch._foreach_div_(updates, denom)
        return updates


def clip_grad_norm(params: Iterable[Tensor], max_norm: float = 1.0) -> Tensor:
    """Global-norm gradient clipping (DFL's ``clipgrad``: 1.0); returns the norm before clipping. Our batch-mean
    loss has 1/B of DFL's gradient norm, so the same threshold clips less often."""
    return torch.nn.utils.clip_grad_norm_(params, max_norm)


def make_optimizer(
    name: str, params: ParamsT, lr: float = 5e-5, lr_dropout: float = 1.0, **kw: Any
) -> AdaBelief | RMSprop:
    """``"adabelief"`` or ``"rmsprop"`` (case-insensitive); ``kw`` goes to the class (betas, eps, bias_correction,
    lr_cos_period, generator, alpha)."""
    classes: dict[str, type[AdaBelief] | type[RMSprop]] = {"adabelief": AdaBelief, "rmsprop": RMSprop}
    key = name.lower()
    if key not in classes:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(classes)}")
    return classes[key](params, lr=lr, lr_dropout=lr_dropout, **kw)


__all__ = [
    "RNG_KEY",
    "AdaBelief",
    "RMSprop",
    "clip_grad_norm",
    "cosine_lr_factor",
    "lr_dropout_mask",
    "make_optimizer",
]
