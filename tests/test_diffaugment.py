"""DiffAugment (facelab.imaging.diffaugment): each op on hand-made images, the paper's magnitudes, shapes and dtypes,
determinism, and gradients (once for G's step, twice for R1 through the augmentation)."""

from __future__ import annotations

import pytest
import torch

from facelab.imaging import diffaugment as da


def _images(n: int = 4, c: int = 3, h: int = 16, w: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed)) * 1.6 - 0.8  # never exactly 0


def test_parse_policy_orders_and_validates():
    assert da.parse_policy("cutout,color") == ("color", "cutout")
    assert da.parse_policy(" color , translation,cutout ") == da.DIFFAUG_OPS
    assert da.parse_policy("") == da.parse_policy("none") == ()
    assert da.parse_policy(["translation"]) == ("translation",)
    with pytest.raises(ValueError, match="unknown op.*hue"):
        da.parse_policy("color,hue")


def test_shapes_dtypes_and_empty_policy():
    x = _images(3, 3, 32, 24)
    for policy in ("color", "translation", "cutout", "color,translation,cutout"):
        y = da.diff_augment(x, policy, torch.Generator().manual_seed(1))
        assert y.shape == x.shape and y.dtype == x.dtype
        assert not torch.equal(y, x)
    assert da.diff_augment(x, "none") is x  # nothing to do: the same tensor back
    y16 = da.diff_augment(x.to(torch.bfloat16), "color,translation,cutout", torch.Generator().manual_seed(1))
    assert y16.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="params"):
        da.apply_diff_augment(x, torch.rand(2, 7), "color")


def test_color_ops():
    x = _images()
    b = torch.tensor([-0.5, 0.0, 0.25, 0.5])
    torch.testing.assert_close(da.brightness(x, b), x + b.view(-1, 1, 1, 1))
    grey = da.saturation(x, torch.zeros(4))
    torch.testing.assert_close(grey, x.mean(1, keepdim=True).expand_as(x))  # no colour left
    torch.testing.assert_close(da.saturation(x, torch.ones(4)), x)
    torch.testing.assert_close(da.contrast(x, torch.ones(4)), x)
    low = da.contrast(x, torch.full((4,), 0.5))
    torch.testing.assert_close(low.mean((1, 2, 3)), x.mean((1, 2, 3)))  # the mean stays, the spread halves
    torch.testing.assert_close(low.std((1, 2, 3)), x.std((1, 2, 3)) / 2)


def test_translate_moves_whole_pixels_and_fills_zeros():
    x = _images(2, 3, 8, 8)
    y = da.translate(x, torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 0.0]))
    torch.testing.assert_close(y[0, :, :7, 2:], x[0, :, 1:, :6])  # right 2, up 1
    assert (y[0, :, :, :2] == 0).all() and (y[0, :, 7, :] == 0).all()
    torch.testing.assert_close(y[1], x[1])  # no shift: the image


def test_cutout_zeroes_a_clipped_square():
    x = _images(2, 3, 8, 8)
    y = da.cutout(x, torch.tensor([4.0, 0.0]), torch.tensor([4.0, 7.0]), (4, 4))
    hole = y[0] == 0
    assert hole[:, 2:6, 2:6].all() and hole.sum() == 3 * 16  # centred: rows/cols 2..5
    assert (y[1] == 0).sum() == 3 * 3 * 2 and (y[1, :, 5:, :2] == 0).all()  # the border cuts it to rows 5-7, cols 0-1
    kept = ~(y == 0)
    torch.testing.assert_close(y[kept], x[kept])


def test_sampled_magnitudes_follow_the_paper():
    n, h = 4000, 32
    x = torch.ones(n, 1, h, h)
    u = da.sample_params(n, "cpu", torch.Generator().manual_seed(3))
    moved = da.apply_diff_augment(x, u, "translation")
    lost_cols = (moved == 0).all(dim=2).sum((1, 2))  # columns emptied by the x shift = |dx|
    assert lost_cols.max() == h // 8 and set(lost_cols.unique().tolist()) == set(range(h // 8 + 1))
    cut = da.apply_diff_augment(x, u, "cutout")
    holes = (cut == 0).sum((1, 2, 3))
    assert holes.max() == (h // 2) ** 2 and holes.min() >= (h // 4) ** 2  # half the side, cut by the border
    col = da.apply_diff_augment(torch.zeros(n, 3, 4, 4), u, "color")
    shift = col.mean((1, 2, 3))  # on a grey image only brightness acts
    assert shift.min() >= -0.5 and shift.max() <= 0.5 and abs(float(shift.mean())) < 0.02


def test_same_generator_same_result_and_params_do_not_depend_on_policy():
    x = _images()
    a = da.diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(9))
    b = da.diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(9))
    c = da.diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(10))
    assert torch.equal(a, b) and not torch.equal(a, c)
    u = da.sample_params(4, "cpu", torch.Generator().manual_seed(9))
    # every column is drawn whatever the policy: translation alone uses the same shifts as in the full policy
    only_t = da.apply_diff_augment(x, u, "translation")
    full_t = da.apply_diff_augment(da.apply_diff_augment(x, u, "color"), u, "translation")
    assert torch.equal(only_t == 0, full_t == 0)


def test_gradients_once_and_twice():
    x = _images(3, 3, 16, 16).requires_grad_()
    u = da.sample_params(3, "cpu", torch.Generator().manual_seed(4))
    y = da.apply_diff_augment(x, u, "color,translation,cutout")
    (g,) = torch.autograd.grad(y.sum(), x)
    assert torch.isfinite(g).all() and (g != 0).any()  # colour mixes every pixel in (the means)
    # translation + cutout alone are a masked permutation: the gradient is 1 where a pixel survives, else 0
    x2 = x.detach().clone().requires_grad_()
    (g2,) = torch.autograd.grad(da.apply_diff_augment(x2, u, "translation,cutout").sum(), x2)
    assert set(g2.unique().tolist()) == {0.0, 1.0}
    assert torch.autograd.gradcheck(
        lambda t: da.apply_diff_augment(t, u.double(), "color,translation,cutout"),
        (torch.rand(3, 3, 6, 6, dtype=torch.float64, requires_grad=True),),
    )
    # R1 through the augmentation: grad w.r.t. the images with a graph, then backward to a "D" weight
    w = torch.randn(3, 3, 3, 3, requires_grad=True)
    logits = torch.nn.functional.conv2d(da.apply_diff_augment(x, u, "color,translation,cutout"), w).square().sum()
    (gx,) = torch.autograd.grad(logits, x, create_graph=True)
    gx.square().sum().backward()
    assert w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0
