"""facelab mask: network shapes, occluders, labels (exclude wins), the stored mask format, training on real faces
(loss goes down, resume), apply/remove (atomic, image bytes kept), one-line errors, and the swap trainer's
``--mask-source xseg`` (stored masks instead of the hull)."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from facelab.config import ExtractConfig, MaskConfig, ModelConfig, TrainConfig
from facelab.errors import FacelabError
from facelab.extract.pipeline import extract
from facelab.faceset.dfl import _xseg_mask
from facelab.faceset.meta import FaceMeta, decode_xseg_mask, embed, encode_xseg_mask, read_meta_bytes
from facelab.faceset.store import face_files, read_face, read_meta, write_face
from facelab.geometry.facetype import transform_matrix
from facelab.geometry.umeyama import apply_affine
from facelab.imaging.masks import hull_mask
from facelab.mask.occluders import SHAPES, make_occluder, occlude
from facelab.mask.samples import crop_hull, face_labels, load_mask_bank, make_sample, recrop
from facelab.mask.stage import apply_mask, remove_masks, train_mask
from facelab.mask.trainer import MaskTrainer, mask_loss
from facelab.models.xseg import BlurPool, MaskNet, count_params, load_mask_model
from facelab.train.loop import RESUMABLE, Trainer
from facelab.train.samples import load_bank

TINY = MaskConfig(widths="4,8,8,16,16,16", batch=2, preview_every=0, autosave_minutes=1e9, seed=1, lr=3e-3)


@pytest.fixture(scope="module")
def faceset(tmp_path_factory, hopper) -> Path:
    root = tmp_path_factory.mktemp("mask")
    d = root / "in"
    d.mkdir()
    h, w = hopper.shape[:2]
    for i in range(4):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), -6 + 4 * i, 1.0 + 0.04 * (i % 2))
        img = cv2.warpAffine(hopper, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        cv2.imwrite(str(d / f"h{i}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    s = extract(d, root / "faces", ExtractConfig(size=192, face_type="whole_face"))
    assert s.faces_written == 4
    return root / "faces"


def _labelled_copy(faceset: Path, dest: Path) -> Path:
    """The faceset with include = landmark hull and exclude = a box over the mouth on every face."""
    dest.mkdir()
    for path in face_files(faceset):
        img, meta = read_face(path)
        lmk = meta.landmarks
        hull = cv2.convexHull(np.round(lmk).astype(np.int32))[:, 0].tolist()
        x0, y0 = lmk[48:60].min(0) - 4
        x1, y1 = lmk[48:60].max(0) + 4
        meta.masks = [
            {"type": "include", "points": hull},
            {"type": "exclude", "points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]},
        ]
        write_face(dest / path.name, img, meta)
    return dest


def test_network_shapes_and_size():
    net = MaskNet()
    assert net(torch.rand(1, 3, 256, 256)).shape == (1, 1, 256, 256)
    assert count_params(net) < 17_600_000 / 4  # DFL's XSeg: 17.6 M
    tiny = MaskNet((2, 2, 2, 2, 2, 2))
    assert tiny(torch.rand(2, 3, 128, 128)).shape == (2, 1, 128, 128)
    blurred = BlurPool(1)(torch.ones(1, 1, 8, 8))
    assert blurred.shape == (1, 1, 4, 4) and torch.allclose(blurred, torch.ones_like(blurred))


def test_occluders_are_seeded_and_overlap_the_hull():
    img = np.full((128, 128, 3), 0.5, np.float32)
    hull = np.zeros((128, 128), np.float32)
    cv2.circle(hull, (64, 64), 40, 1, -1)
    a = occlude(img, hull, np.random.default_rng(5))
    b = occlude(img, hull, np.random.default_rng(5))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert ((a[1] > 0.5) & (hull > 0)).any() and a[1].min() >= 0 and a[1].max() <= 1
    patch = np.zeros((50, 60, 3), np.uint8)
    for shape in SHAPES:
        rgb, alpha = make_occluder(np.random.default_rng(1), 128, (64, 64), 30, [patch], False, (shape,))
        assert alpha.max() > 0.5, shape
        assert np.all(rgb[alpha > 0.5] == 0)  # filled from the patch only: no procedural texture
    with pytest.raises(ValueError):
        make_occluder(np.random.default_rng(1), 64, (32, 32), 10, [], False)


def test_labels_fill_include_then_exclude(tmp_path, faceset):
    lab = _labelled_copy(faceset, tmp_path / "lab")
    img, meta = read_face(face_files(lab)[0])
    crop, m = recrop(img, meta)
    label, hull = face_labels(meta, m)
    assert crop.shape == (256, 256, 3) and label.shape == hull.shape == (256, 256)
    mouth = np.round(cv2.transform(meta.landmarks[None, 48:68], m)[0].mean(0)).astype(int)
    assert hull[mouth[1], mouth[0]] == 1 and label[mouth[1], mouth[0]] == 0  # exclude wins
    assert 0.6 < label.sum() / hull.sum() < 1.0


def test_samples_are_pure_functions_of_the_counter(faceset):
    bank = load_mask_bank([faceset], generic=True)
    a, b = make_sample(bank, TINY, 7), make_sample(bank, TINY, 7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].shape == (256, 256, 4) and set(np.unique(a[1])) <= {0.0, 1.0}
    # the 4th channel is the landmark hull under the label's geometry: the label (hull minus occluders) lies in it
    assert set(np.unique(a[0][..., 3])) <= {0.0, 1.0} and (a[1] <= a[0][..., 3]).mean() > 0.99
    # an image-only model's samples are the same pixels without it
    rgb = make_sample(bank, replace(TINY, hull_prior=False), 7)
    np.testing.assert_array_equal(rgb[0], a[0][..., :3])
    np.testing.assert_array_equal(rgb[1], a[1])


def test_no_polygons_without_generic_is_a_one_line_error(tmp_path, faceset):
    with pytest.raises(FacelabError, match="none of the 4 faces carries include/exclude polygons") as e:
        train_mask([faceset], tmp_path / "m", TINY, iterations=1)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "m").exists()


def test_stored_mask_format_round_trips_and_old_files_load(faceset):
    meta = read_meta(face_files(faceset)[0])
    d = meta.to_dict()
    assert d["xseg_mask"] is None
    del d["xseg_mask"]
    assert FaceMeta.from_dict(d).xseg_mask is None  # a face written before the field existed
    mask = np.zeros((512, 512), np.float32)
    mask[100:400, 150:350] = 1
    meta.xseg_mask = encode_xseg_mask(mask)
    back = FaceMeta.from_dict(meta.to_dict())
    assert back.xseg_mask == meta.xseg_mask
    png = base64.b64decode(back.xseg_mask)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    m = decode_xseg_mask(back.xseg_mask)
    assert m.shape == (256, 256) and m.dtype == np.uint8 and m[128, 128] == 255 and m[10, 10] == 0
    binary = np.zeros((192, 192), bool)  # as 'mask apply' stores it: 8-bit gray 0/255, run-length deflated
    binary[40:150, 30:170] = True
    png = base64.b64decode(encode_xseg_mask(binary))
    assert png[25] == 0 and png[24] == 8  # IHDR: colour type gray, bit depth 8
    np.testing.assert_array_equal(decode_xseg_mask(encode_xseg_mask(binary)), binary * np.uint8(255))
    np.testing.assert_array_equal(
        decode_xseg_mask(encode_xseg_mask(binary)), decode_xseg_mask(encode_xseg_mask(binary * 1.0))
    )


def test_dfl_xseg_mask_is_decoded():
    mask = np.zeros((256, 256), np.uint8)
    mask[50:200, 60:190] = 255
    ok, buf = cv2.imencode(".png", mask)
    for value in (buf, buf.tobytes()):  # DFL stores cv2.imencode's array; a re-pickled file may hold bytes
        np.testing.assert_array_equal(decode_xseg_mask(_xseg_mask(value)), mask)
    assert _xseg_mask(b"\x89PNG...") is None and _xseg_mask(None) is None


def test_loss_decreases_on_real_faces_and_resume_continues(tmp_path, faceset):
    cfg = replace(TINY, dice_weight=0.0)
    res = train_mask([faceset], tmp_path / "m", cfg, iterations=24, generic=True)
    bce = MaskTrainer([faceset], tmp_path / "m", cfg, generic=True).history["bce"]
    assert res.iteration == 24 and len(bce) == 24
    assert np.mean(bce[-6:]) < 0.85 * np.mean(bce[:6]), (np.mean(bce[:6]), np.mean(bce[-6:]))
    again = train_mask([faceset], tmp_path / "m", cfg, iterations=25, generic=True)
    assert again.iteration == 25 and "iteration 25" in again.summary()
    with pytest.raises(FacelabError, match="cannot change on resume"):
        train_mask([faceset], tmp_path / "m", replace(cfg, lr=1.0), {"lr"}, iterations=26, generic=True)


def test_mask_loss_parts():
    logits = torch.tensor([[[[10.0, -10.0]]]])
    target = torch.tensor([[[[1.0, 0.0]]]])
    loss, parts = mask_loss(logits, target, 1.0)
    assert float(loss) < 1e-3 and set(parts) == {"bce", "dice"}


def test_apply_and_remove_rewrite_metadata_only(tmp_path, faceset):
    model = tmp_path / "model"
    train_mask([faceset], model, TINY, iterations=2, generic=True)
    lab = _labelled_copy(faceset, tmp_path / "faces")
    train_mask([lab], tmp_path / "tuned", TINY, iterations=3, init_from=model)
    before = {p.name: read_face(p)[0] for p in face_files(lab)}
    res = apply_mask(tmp_path / "tuned", lab, TINY)
    assert res.written == 4 and "stored masks" in res.summary()
    for p in face_files(lab):
        img, meta = read_face(p)
        np.testing.assert_array_equal(img, before[p.name])  # image bytes untouched
        m = decode_xseg_mask(meta.xseg_mask)
        assert m.shape == (192, 192) and set(np.unique(m)) <= {0, 255}
        assert meta.masks  # polygons kept
    mm = load_mask_model(tmp_path / "tuned")
    with pytest.raises(ValueError, match="landmark hull"):
        mm.predict(np.zeros((3, 256, 256, 3), np.uint8))
    out = mm.predict(np.zeros((3, 256, 256, 3), np.uint8), hulls=np.ones((3, 256, 256), np.float32))
    assert out.shape == (3, 256, 256) and out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    rm = remove_masks(lab)
    assert rm.removed == 4 and all(read_meta(p).xseg_mask is None for p in face_files(lab))


def test_apply_changes_only_the_metadata_and_stores_the_binarised_prediction(tmp_path, faceset):
    """JPEG and PNG faces: re-embedding a face's old metadata in the file apply wrote gives back the old file byte
    for byte (image data untouched), and the stored mask is exactly ``MaskModel.predict`` on the whole-face crop,
    warped back to the aligned face and binarised at the threshold, with the batches run side by side."""
    model = tmp_path / "model"
    train_mask([faceset], model, TINY, iterations=2, generic=True)
    faces = tmp_path / "faces"
    faces.mkdir()
    for i, path in enumerate(face_files(faceset)):
        img, meta = read_face(path)
        write_face(faces / f"{path.stem}.{'png' if i % 2 else 'jpg'}", img, meta)
    before = {p.name: p.read_bytes() for p in face_files(faces)}
    images, metas = zip(*(read_face(faces / name) for name in before))
    crops, mats = zip(*(recrop(img, meta) for img, meta in zip(images, metas)))
    hulls = np.stack([crop_hull(meta, m) for meta, m in zip(metas, mats)])
    pred = load_mask_model(model).predict(np.stack(crops), hulls=hulls)
    threads = torch.get_num_threads()
    res = apply_mask(model, faces, replace(TINY, apply_batch=3))
    assert res.written == 4 and torch.get_num_threads() == threads
    for name, img, m, p in zip(before, images, mats, pred):
        after = (faces / name).read_bytes()
        assert after != before[name] and embed(after, read_meta_bytes(before[name])) == before[name]
        side = img.shape[0]
        warped = cv2.warpAffine(p, m, (side, side), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR, borderValue=0.0)
        stored = decode_xseg_mask(read_meta_bytes(after).xseg_mask)
        np.testing.assert_array_equal(stored, np.where(warped >= TINY.threshold, 255, 0).astype(np.uint8))
        assert 0 < np.count_nonzero(stored) < stored.size


def test_bad_mask_models_are_one_line_errors(tmp_path, faceset):
    bad = tmp_path / "bad"
    (bad / "checkpoint").mkdir(parents=True)
    (bad / "checkpoint" / "state.json").write_text("{")
    (tmp_path / "file.safetensors").write_bytes(b"junk")
    for path in (bad, tmp_path / "missing", tmp_path / "file.safetensors", tmp_path):
        with pytest.raises(FacelabError) as e:
            load_mask_model(path)
        assert "\n" not in str(e.value) and str(path) in str(e.value)


# --- facelab train --mask-source xseg: the swap model's masked losses use the stored masks -------------------------


def _with_stored_masks(faceset: Path, dest: Path) -> Path:
    """The faceset with a stored xseg mask on every face: the landmark hull minus a box over the mouth."""
    dest.mkdir()
    for path in face_files(faceset):
        img, meta = read_face(path)
        m = hull_mask((meta.size, meta.size), meta.landmarks)
        (x0, y0), (x1, y1) = np.round(meta.landmarks[48:68].min(0) - 4), np.round(meta.landmarks[48:68].max(0) + 4)
        m[int(y0) : int(y1), int(x0) : int(x1)] = 0
        meta.xseg_mask = encode_xseg_mask(m)
        write_face(dest / path.name, img, meta)
    return dest


def test_train_mask_source_xseg_uses_the_stored_masks(tmp_path, faceset):
    fs = _with_stored_masks(faceset, tmp_path / "fs")
    hull, stored = load_bank(fs, "full", 64), load_bank(fs, "full", 64, mask_source="xseg")
    for i, path in enumerate(face_files(fs)):
        lmk = apply_affine(transform_matrix(read_meta(path).landmarks, 64, "full"), read_meta(path).landmarks)
        mouth, nose = np.round(lmk[60:68].mean(0)).astype(int), np.round(lmk[30]).astype(int)
        assert hull.masks[i][mouth[1], mouth[0]] == 255 and stored.masks[i][mouth[1], mouth[0]] == 0
        assert stored.masks[i][nose[1], nose[0]] == 255
    # the trainer reads it from TrainConfig; it may change when a run resumes
    cfg = TrainConfig(batch=2, workers=0, precision="fp32", preview_every=0, pretrain=True, mask_source="xseg")
    small = ModelConfig(archi="df-ud", resolution=64, face_type="full", ae_dims=16, e_dims=8, d_dims=8, d_mask_dims=4)
    t = Trainer(fs, fs, tmp_path / "model", small, cfg)
    np.testing.assert_array_equal(t.src_bank.masks, stored.masks)
    assert "mask_source" in RESUMABLE
    with pytest.raises(FacelabError, match="--mask-source must be one of hull, xseg"):
        Trainer(fs, fs, tmp_path / "other", small, replace(cfg, mask_source="polygons"))


def test_train_mask_source_xseg_without_stored_masks_is_a_one_line_error(tmp_path, faceset):
    with pytest.raises(FacelabError, match="4 of 4 faces have no stored xseg mask") as e:
        load_bank(faceset, "full", 64, mask_source="xseg")
    assert str(faceset) in str(e.value) and "facelab mask apply" in str(e.value) and "\n" not in str(e.value)
    fs = _with_stored_masks(faceset, tmp_path / "fs")
    bad = face_files(fs)[1]
    img, meta = read_face(bad)
    meta.xseg_mask = "bm90IGEgUE5H"  # base64, but not a PNG
    write_face(bad, img, meta)
    with pytest.raises(FacelabError, match="xseg_mask is not") as e:
        load_bank(fs, "full", 64, mask_source="xseg")
    assert str(bad) in str(e.value) and "\n" not in str(e.value)


def test_image_only_models_saved_before_the_hull_channel_still_load(tmp_path):
    """A model whose saved config predates ``hull_prior`` is DFL-style image-only: 3 input channels, no hulls."""
    from dataclasses import asdict

    from facelab.io import checkpoint

    net = MaskNet((2, 2, 2, 2, 2, 2))
    saved = {k: v for k, v in asdict(MaskConfig(widths="2,2,2,2,2,2")).items() if k != "hull_prior"}
    tensors = {f"net.{k}": v for k, v in net.state_dict().items()}
    checkpoint.save(tmp_path / "old", checkpoint.Checkpoint(tensors, {}, {"mask": saved, "iteration": 5}))
    mm = load_mask_model(tmp_path / "old")
    assert not mm.hull_prior and mm.net.in_channels == 3
    assert mm.predict(np.zeros((2, 256, 256, 3), np.uint8)).shape == (2, 256, 256)
