"""Training samples: deterministic per counter, masks from polygons or landmarks, augmentation shapes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from facelab.config import TrainConfig
from facelab.faceset.meta import FaceMeta
from facelab.imaging.masks import hull_mask, polygon_mask
from facelab.train.samples import CounterBatchSampler, FaceBank, PairDataset, face_mask


def _bank(n: int, res: int = 64, seed: int = 0) -> FaceBank:
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 255, (n, res, res, 3), dtype=np.uint8)
    masks = np.zeros((n, res, res), np.uint8)
    masks[:, 16:48, 16:48] = 255
    return FaceBank(
        imgs, masks, masks.copy(), rng.uniform(-40, 40, n).astype(np.float32), [f"{i}.jpg" for i in range(n)]
    )


def test_samples_are_a_function_of_the_counter():
    cfg = replace(TrainConfig(), seed=5, random_hsv_power=0.1, degrade_prob=0.5, ct_mode="rct")
    ds = PairDataset(_bank(7), _bank(5, seed=1), cfg)
    a, b = ds[123], PairDataset(_bank(7), _bank(5, seed=1), cfg)[123]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert not torch.equal(ds[124]["src_warped"], a["src_warped"])
    assert a["src_warped"].shape == (3, 64, 64) and a["src_mask"].shape == (1, 64, 64)
    assert float(a["dst_target"].min()) >= 0 and float(a["dst_target"].max()) <= 1


def test_a_sample_drawn_without_warp_is_its_target():
    ds = PairDataset(_bank(7), _bank(5, seed=1), replace(TrainConfig(), seed=2))
    warped, flat = ds[(40, True)], ds[(40, False)]
    assert torch.equal(flat["src_warped"], flat["src_target"])
    assert torch.equal(flat["src_target"], warped["src_target"])  # same face and affine, only the warp differs
    assert not torch.equal(warped["src_warped"], warped["src_target"])


def test_each_face_once_per_epoch_and_ranks_split_the_global_batch():
    ds = PairDataset(_bank(6), _bank(6), replace(TrainConfig(), uniform_yaw=False))
    rng = np.random.default_rng(0)
    picks = [ds._pick("src", ds.src, k, rng) for k in range(12)]
    assert sorted(picks[:6]) == list(range(6)) and sorted(picks[6:]) == list(range(6))
    one = next(iter(CounterBatchSampler(8, start_iter=3)))
    halves = [next(iter(CounterBatchSampler(8, start_iter=3, rank=r, world=2))) for r in (0, 1)]
    assert halves[0] + halves[1] == one == [(k, True) for k in range(24, 32)]


def test_stored_polygons_replace_the_landmark_hull():
    lmk = np.random.default_rng(0).uniform(20, 44, (68, 2))
    meta = FaceMeta("full", 64, lmk, lmk, np.eye(2, 3), np.eye(2, 3), "x", (64, 64), (0, 0, 64, 64))
    m = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    np.testing.assert_array_equal(face_mask(meta, m, 64), hull_mask((64, 64), lmk))
    meta.masks = [
        {"type": "include", "points": [[10, 10], [50, 10], [50, 50], [10, 50]]},
        {"type": "exclude", "points": [[20, 20], [30, 20], [30, 30], [20, 30]]},
    ]
    mask = face_mask(meta, m, 64)
    assert mask[15, 15] == 1 and mask[25, 25] == 0 and mask[5, 5] == 0
    np.testing.assert_array_equal(mask, polygon_mask((64, 64), meta.masks))


def test_uniform_expression_draws_every_openness_bin_evenly():
    bank = _bank(40)
    bank.expressions = np.array([0] * 2 + [4] * 8 + [5] * 30)  # 2 blinks, 8 half-open talking, 30 open talking
    ds = PairDataset(bank, _bank(6), replace(TrainConfig(), uniform_expression=True))
    picks = np.array([ds._pick("src", ds.src, k, np.random.default_rng(k)) for k in range(3000)])
    share = np.bincount(bank.expressions[picks], minlength=9)[[0, 4, 5]] / len(picks)
    np.testing.assert_allclose(share, [1 / 3] * 3, atol=0.04)  # plain epochs would give the blinks 5 %
    assert set(picks[bank.expressions[picks] == 0]) == {0, 1}  # within a bin, every face is drawn


def test_openness_bins_of_real_landmarks(hopper, finder):
    from facelab.geometry.openness import openness_bin

    lm = finder.find(hopper)[0].points.astype(np.float64)
    assert openness_bin(lm) == 3 * 2 + 0  # eyes open, mouth closed
    shut = lm.copy()
    for a, b in ((37, 41), (38, 40), (43, 47), (44, 46)):
        shut[a] = shut[b] = (lm[a] + lm[b]) / 2
    shut[[65, 66, 67]] += [0.0, 0.5 * np.linalg.norm(lm[64] - lm[60])]
    assert openness_bin(np.stack([lm, shut])).tolist() == [6, 2]  # a blink with the mouth wide open
