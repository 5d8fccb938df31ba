"""Rendered (synthetic) faces train like real ones: ``--synthetic-weight W`` scales how often they are drawn, and
``facelab train --src`` pools several faceset folders (the real faces and the renders) into one src."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from facelab.config import TrainConfig
from facelab.errors import FacesetError
from facelab.faceset.meta import FaceMeta
from facelab.faceset.store import write_face
from facelab.geometry.landmarks68 import MEAN_FACE_3D
from facelab.train.samples import FaceBank, PairDataset, load_bank

DRAWS = 4000


def _bank(n_real: int, n_synth: int, res: int = 8, yaws: np.ndarray | None = None) -> FaceBank:
    n = n_real + n_synth
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 255, (n, res, res, 3), dtype=np.uint8)
    masks = np.full((n, res, res), 255, np.uint8)
    yaws = rng.uniform(-40, 40, n).astype(np.float32) if yaws is None else yaws.astype(np.float32)
    flags = np.arange(n) >= n_real
    return FaceBank(imgs, masks, masks.copy(), yaws, [f"{i}.jpg" for i in range(n)], is_synthetic=flags)


def _picks(bank: FaceBank, cfg: TrainConfig, side: str = "src") -> np.ndarray:
    ds = PairDataset(bank, bank, cfg)
    rngs = (np.random.default_rng([cfg.seed, k, side == "dst"]) for k in range(DRAWS))  # as PairDataset seeds them
    return np.array([ds._pick(side, bank, k, rng) for k, rng in enumerate(rngs)])


def test_bank_counts_its_synthetic_faces():
    bank = _bank(10, 10)
    assert bank.synthetic == 10 and bank.is_synthetic.sum() == 10
    plain = FaceBank(bank.images, bank.masks, bank.em_masks, bank.yaws, bank.names, 3)  # the count alone still works
    assert plain.synthetic == 3 and not plain.is_synthetic.any()


@pytest.mark.parametrize("uniform_yaw", [False, True])
@pytest.mark.parametrize(("weight", "share"), [(4.0, 0.8), (0.25, 0.2)])
def test_synthetic_weight_scales_how_often_synthetic_faces_are_drawn(weight, share, uniform_yaw):
    # with uniform yaw each yaw bin holds one real and one synthetic face: bins stay equally likely, and within a
    # bin the synthetic face is drawn W times as often as the real one
    yaws = np.tile(np.linspace(-30, 30, 10), 2) if uniform_yaw else None
    bank = _bank(10, 10, yaws=yaws)
    cfg = replace(TrainConfig(), seed=3, synthetic_weight=weight, uniform_yaw=uniform_yaw)
    picks = _picks(bank, cfg)
    assert abs(bank.is_synthetic[picks].mean() - share) < 0.05
    assert set(picks) == set(range(20))  # every face still drawn
    np.testing.assert_array_equal(picks, _picks(bank, cfg))  # a function of (seed, k)
    if not uniform_yaw:  # plain epochs (20 draws): every one holds the synthetic faces' share, give or take one
        per_epoch = bank.is_synthetic[picks].reshape(-1, 20).sum(1)
        assert np.abs(per_epoch - 20 * share).max() <= 1
    dst = _picks(bank, cfg, "dst")  # the dst side is weighted the same, with its own draws
    assert abs(bank.is_synthetic[dst].mean() - share) < 0.05 and not np.array_equal(dst, picks)


@pytest.mark.parametrize("uniform_yaw", [False, True])
def test_weight_one_draws_exactly_as_without_synthetic_faces(uniform_yaw):
    bank = _bank(10, 10)
    real = replace(bank, is_synthetic=None, synthetic=0)
    cfg = replace(TrainConfig(), seed=3, uniform_yaw=uniform_yaw)
    assert cfg.synthetic_weight == 1.0
    np.testing.assert_array_equal(_picks(bank, cfg), _picks(real, cfg))
    # and a weight with nothing synthetic to weigh changes nothing either
    np.testing.assert_array_equal(_picks(real, replace(cfg, synthetic_weight=4.0)), _picks(real, cfg))


def _meta(yaw: float, synthetic: bool = False) -> FaceMeta:
    lmk = 32 + MEAN_FACE_3D[:, :2] * 18  # a plausible 68-point face in a 64 px aligned crop
    return FaceMeta("whole_face", 64, lmk, lmk, np.eye(2, 3), np.eye(2, 3), "x", (64, 64), (0, 0, 64, 64),
                    yaw=yaw, synthetic=synthetic)  # fmt: skip


def _faceset(folder: Path, names: list[str], synthetic: bool = False, seed: int = 0) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i, name in enumerate(names):
        img = rng.integers(40, 200, (64, 64, 3), dtype=np.uint8)
        write_face(folder / name, img, _meta(-20 + 10 * i, synthetic))
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pool")
    return {
        "real": _faceset(root / "real", ["0.jpg", "1.jpg", "2.jpg"]),
        "renders": _faceset(root / "renders", ["0.jpg", "r1.jpg"], synthetic=True, seed=1),
        "dst": _faceset(root / "dst", ["d0.jpg", "d1.jpg", "d2.jpg"], seed=2),
    }


def test_load_bank_pools_folders_with_unique_names(folders, tmp_path):
    one = load_bank(folders["real"], "full", 32)  # one folder: as before
    assert one.names == ["0.jpg", "1.jpg", "2.jpg"] and one.synthetic == 0
    pooled = load_bank([folders["real"], str(folders["renders"])], "full", 32)
    assert pooled.names == ["real/0.jpg", "1.jpg", "2.jpg", "renders/0.jpg", "r1.jpg"]
    assert pooled.is_synthetic.tolist() == [False, False, False, True, True] and pooled.synthetic == 2
    np.testing.assert_array_equal(pooled.images[:3], one.images)
    real_only = load_bank([folders["real"], folders["renders"]], "full", 32, synthetic=False)
    assert real_only.names == one.names and real_only.synthetic == 0
    with pytest.raises(FacesetError, match="every face is synthetic"):
        load_bank([folders["renders"]], "full", 32, synthetic=False)
    empty = tmp_path / "empty_renders"
    empty.mkdir()
    with pytest.raises(FacesetError, match=rf"^{empty}: faceset is empty"):
        load_bank([folders["real"], empty], "full", 32)
    with pytest.raises(FacesetError, match=rf"^{folders['real']}: faceset given twice"):
        load_bank([folders["real"], folders["renders"], folders["real"]], "full", 32)


def test_train_cli_pools_several_src_folders(folders, tmp_path, run_cli):
    tiny = ["--archi", "df-ud", "--resolution", "64", "--face-type", "full", "--ae-dims", "16", "--e-dims", "8",
            "--d-dims", "8", "--d-mask-dims", "8", "--batch", "2", "--workers", "0", "--precision", "fp32",
            "--preview-every", "0", "--synthetic-weight", "3"]  # fmt: skip
    model = tmp_path / "m"
    argv = ["train", "--src", folders["real"], "--src", folders["renders"], "--dst", folders["dst"], "--model", model]
    rc, out, err = run_cli([*argv, "--iters", "1", *tiny])
    assert rc == 0, err
    assert "5 src (2 synthetic) / 3 dst faces" in out
    rc, out, err = run_cli([*argv, "--iters", "2", "--synthetic-weight", "0.5"])  # resumable
    assert rc == 0, err
    assert '"synthetic_weight": 0.5' in (model / "config.json").read_text()


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_synthetic_weight_must_be_positive(tmp_path, run_cli, value):
    model = tmp_path / "m"
    rc, out, err = run_cli(["train", "--src", tmp_path / "a", "--dst", tmp_path / "b", "--model", model,
                            "--synthetic-weight", value])  # fmt: skip
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--synthetic-weight" in lines[0], err
    assert not model.exists()
