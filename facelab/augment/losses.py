"""StyleGAN2-ADA's losses and regularisers as pure functions (stylegan2-ada-notes.md §3; Karras et al. 2020,
``training/loss.py`` of stylegan2-ada-pytorch). Logits are D's raw outputs ``[B]`` or ``[B, 1]``.

Non-saturating logistic GAN: G minimises softplus(-D(G(z))) = -log sigmoid(D(G(z))), D minimises
softplus(D(G(z))) + softplus(-D(x)). Two regularisers run *lazily* (every k steps, their loss multiplied by k so
their average strength is unchanged): R1 on reals keeps D flat where the data lies, path length keeps G's
w -> image Jacobian of a steady size. The autograd calls take the tensors that are already in the graph (the reals
D saw, the ws G drew from), so the trainer decides where the gradient is taken; nothing here holds state: the
path-length running mean is passed in and its new value returned.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def g_nonsaturating_loss(logits_fake: Tensor) -> Tensor:
    """Generator loss, scalar: mean softplus(-D(G(z))) (StyleGAN2's non-saturating logistic loss; -log D(G(z))
    rather than log(1 - D(G(z))), so G still gets a gradient while D rejects its fakes confidently)."""
    return F.softplus(-logits_fake).mean()


def d_logistic_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """Discriminator loss, scalar: mean softplus(D(G(z))) + mean softplus(-D(x)), the logistic (BCE) loss with
    reals labelled 1 and fakes 0."""
    return F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()


def r1_penalty(real: Tensor, logits_real: Tensor) -> Tensor:
    """Mean over the batch of ||∇_x D(x)||², scalar, for ``logits_real`` computed from ``real`` (which must
    require grad). The graph is kept (create_graph) so the penalty can itself be differentiated w.r.t. D's weights.

    ``real`` is the *un-augmented* image: with ADA the augmentation sits inside D's path and is differentiable, so
    the penalty is on the images as they are (stylegan2-ada-notes §3). Unweighted: see :func:`r1_loss`."""
    (grad,) = torch.autograd.grad(logits_real.sum(), real, create_graph=True)
    return grad.float().square().sum([1, 2, 3]).mean()


def r1_loss(penalty: Tensor, gamma: float, interval: int = 1) -> Tensor:
    """The R1 term D minimises: (gamma/2) · penalty · interval (Mescheder et al. 2018's R1, scaled by the lazy
    interval because it runs once every ``interval`` D steps). ``penalty`` is :func:`r1_penalty`'s."""
    return penalty * (gamma / 2) * interval


def path_lengths(img: Tensor, ws: Tensor, y: Tensor) -> Tensor:
    """Per-sample path length ``[B]``: |J_w^T y| with J the Jacobian of ``img`` (``[B, C, H, W]``, computed from
    ``ws`` ``[B, num_ws, w_dim]``) and ``y`` a random image (StyleGAN2: N(0, I) / sqrt(H·W)): sqrt of the mean
    over the num_ws copies of Σ_dims g², g = ∂ Σ(img · y) / ∂ws. The graph is kept, so the lengths can be
    penalised w.r.t. G's weights."""
    (grad,) = torch.autograd.grad((img * y).sum(), ws, create_graph=True)
    return grad.float().square().sum(2).mean(1).sqrt()


def path_length_mean(pl_mean: Tensor, lengths: Tensor, decay: float = 0.01) -> Tensor:
    """The new running target a' = a + decay · (mean(lengths) - a) (StyleGAN2's pl_decay 0.01), as a new tensor;
    ``lengths`` are all ranks' (detached here: the target is a constant for the penalty)."""
    return pl_mean.lerp(lengths.detach().mean(), decay)


def path_length_penalty(lengths: Tensor, pl_mean: Tensor) -> Tensor:
    """Mean (length - a)², scalar: StyleGAN2's path-length regulariser, which asks a fixed-size step in w to move
    the image by the same amount everywhere (a smoother, better-conditioned generator). Unweighted: see
    :func:`path_length_loss`."""
    return (lengths - pl_mean).square().mean()


def path_length_loss(penalty: Tensor, weight: float, interval: int = 1) -> Tensor:
    """The path-length term G minimises: penalty · pl_weight · interval (lazy: run every ``interval`` G steps)."""
    return penalty * weight * interval


__all__ = [
    "d_logistic_loss",
    "g_nonsaturating_loss",
    "path_length_loss",
    "path_length_mean",
    "path_length_penalty",
    "path_lengths",
    "r1_loss",
    "r1_penalty",
]
