"""SAEHD networks and discriminators: DFL-exact parameter counts, shapes for every archi, wiring, export."""

from __future__ import annotations

from itertools import combinations

import pytest
import torch

from facelab.config import ModelConfig
from facelab.errors import FacelabError
from facelab.export.torchscript import export_swap_torchscript
from facelab.models import (
    SAEHD,
    CodeDiscriminator,
    ModelConfigError,
    UNetPatchDiscriminator,
    parse_archi,
    validate,
)
from facelab.models.discriminators import patch_strides, receptive_field
from facelab.models.saehd import RGBHead, pixel_norm

OPTION_SETS = ["".join(c) for n in range(5) for c in combinations("udtc", n)]  # "", "u", ..., "udtc" (16)


def tiny(archi: str, resolution: int = 64) -> ModelConfig:
    return ModelConfig(archi=archi, resolution=resolution, ae_dims=32, e_dims=16, d_dims=16, d_mask_dims=8)


def build(cfg: ModelConfig, seed: int = 0) -> SAEHD:
    torch.manual_seed(seed)
    return SAEHD(cfg)


# -- DFL equivalence -----------------------------------------------------------------------------------------------


def test_param_counts_match_dfl_liae_ud_128():
    with torch.device("meta"):  # no memory, no init time: counts only need shapes
        model = SAEHD(ModelConfig(archi="liae-ud", resolution=128, ae_dims=256, e_dims=64, d_dims=64, d_mask_dims=22))
    assert model.param_counts() == {
        "encoder": 4_306_560,
        "inter_AB": 19_933_440,
        "inter_B": 19_933_440,
        "decoder": 38_203_115,
        "total": 82_376_555,
    }


def test_param_counts_match_dfl_df_ud_128():
    with torch.device("meta"):
        model = SAEHD(ModelConfig(archi="df-ud", resolution=128, ae_dims=256, e_dims=64, d_dims=64, d_mask_dims=22))
    assert model.param_counts() == {
        "encoder": 4_306_560,
        "inter": 11_801_856,
        "decoder_src": 19_181_291,
        "decoder_dst": 19_181_291,
        "total": 54_470_998,
    }


def test_default_config_is_liae_ud_128():
    with torch.device("meta"):
        model = SAEHD()
    assert model.kind == "liae" and model.opts == {"u", "d"} and model.resolution == 128
    assert model.param_counts()["total"] == 82_376_555


# -- shapes ----------------------------------------------------------------------------------------------------------


def check_outputs(model: SAEHD, res: int) -> None:
    src, dst = torch.rand(1, 3, res, res), torch.rand(2, 3, res, res)  # unequal batches on purpose
    with torch.no_grad():
        out = model(src, dst)
        face, mask_prd, mask_dst = model.swap(dst)
    assert out["pred_src_src"].shape == (1, 3, res, res)
    assert out["pred_src_srcm"].shape == (1, 1, res, res)
    for key, ch in [("pred_dst_dst", 3), ("pred_dst_dstm", 1), ("pred_src_dst", 3), ("pred_src_dstm", 1)]:
        assert out[key].shape == (2, ch, res, res), key
    assert out["src_code"].shape == (1, *model.code_shape)
    assert out["dst_code"].shape == (2, *model.code_shape)
    assert face.shape == (2, 3, res, res) and mask_prd.shape == mask_dst.shape == (2, 1, res, res)
    for key in ("pred_src_src", "pred_dst_dstm", "pred_src_dst"):
        assert out[key].min() >= 0.0 and out[key].max() <= 1.0  # sigmoid heads


@pytest.mark.parametrize("kind", ["df", "liae"])
@pytest.mark.parametrize("opts", OPTION_SETS)
def test_output_shapes_every_option_set(kind: str, opts: str):
    archi = f"{kind}-{opts}" if opts else kind
    check_outputs(build(tiny(archi, 64)), 64)


@pytest.mark.parametrize("archi, res", [("df-ud", 96), ("liae-udt", 96), ("df-u", 80), ("liae-t", 80)])
def test_output_shapes_other_resolutions(archi: str, res: int):
    # 80 is a multiple of 16 but not 32: fine without 'd'; with 't' the encoder ends at 3x3 (ceil halving)
    check_outputs(build(tiny(archi, res)), res)


def test_code_shapes():
    with torch.device("meta"):
        assert SAEHD(tiny("df-ud", 128)).code_shape == (32, 8, 8)  # inter: 4x4 then upscale
        assert SAEHD(tiny("df-udt", 128)).code_shape == (32, 4, 4)  # 't': no upscale
        assert SAEHD(tiny("df", 128)).code_shape == (32, 16, 16)
        assert SAEHD(tiny("liae-ud", 128)).code_shape == (128, 8, 8)


# -- validation ------------------------------------------------------------------------------------------------------


def test_parse_archi():
    assert parse_archi("liae-ud") == ("liae", {"u", "d"})
    assert parse_archi("df") == ("df", set())
    assert parse_archi("DF-UDTC") == ("df", {"u", "d", "t", "c"})


@pytest.mark.parametrize(
    "archi, match",
    [
        ("df-x", "unknown option"),
        ("liae-udx", "unknown option"),
        ("sae-ud", "type must be"),
        ("df-", "nothing after"),
        ("df-uu", "repeated"),
    ],
)
def test_parse_archi_rejects(archi: str, match: str):
    with pytest.raises(ValueError, match=match):
        parse_archi(archi)


@pytest.mark.parametrize("res", [80, 112])
def test_validate_rejects_d_off_multiple_of_32(res: int):
    with pytest.raises(ValueError, match="multiple of 32"):
        validate(tiny("df-ud", res))
    with pytest.raises(ModelConfigError):
        SAEHD(tiny("liae-d", res))
    validate(tiny("df-u", res))  # fine without 'd'


def test_validate_accepts_96_with_d():
    validate(tiny("df-ud", 96))  # 96 = 3 * 32: DFL's Quick96 is df-ud @ 96


@pytest.mark.parametrize("res", [48, 72, 520, 1024])
def test_validate_rejects_bad_resolution(res: int):
    with pytest.raises(ModelConfigError, match="resolution"):
        validate(tiny("df", res))


def test_validate_rejects_bad_dims_and_error_types():
    with pytest.raises(ModelConfigError, match="ae_dims"):
        validate(ModelConfig(ae_dims=0))
    assert issubclass(ModelConfigError, ValueError) and issubclass(ModelConfigError, FacelabError)


# -- wiring ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("archi", ["df-ud", "liae-ud", "liae-t"])
def test_swap_matches_forward(archi: str):
    model = build(tiny(archi))
    src, dst = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        out = model(src, dst)
        face, mask_prd, mask_dst = model.swap(dst)
    torch.testing.assert_close(face, out["pred_src_dst"], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(mask_prd, out["pred_src_dstm"], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(mask_dst, out["pred_dst_dstm"], atol=1e-5, rtol=1e-4)


def test_liae_swap_ignores_inter_b():
    model = build(tiny("liae-ud"))
    dst = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = model.swap(dst)
        for p in model.inter_B.parameters():
            p.add_(torch.randn_like(p))
        after = model.swap(dst)
    torch.testing.assert_close(before[0], after[0])  # swap code = [AB(dst), AB(dst)]
    torch.testing.assert_close(before[1], after[1])
    assert not torch.allclose(before[2], after[2])  # dst code = [B(dst), AB(dst)]


def test_df_swap_uses_src_decoder():
    model = build(tiny("df-ud"))
    dst = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = model.swap(dst)
        for p in model.decoder_dst.parameters():
            p.add_(torch.randn_like(p))
        after = model.swap(dst)
    torch.testing.assert_close(before[0], after[0])
    assert not torch.allclose(before[2], after[2])


@pytest.mark.parametrize("archi", ["df-ud", "liae-ud"])
def test_detach_swap_code(archi: str):
    model = build(tiny(archi))
    out = model(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64), detach_swap_code=True)
    out["pred_src_dst"].sum().backward()
    # encoder and inter run batched for src and dst, so they are in the graph, but the swap sends them nothing
    assert all(torch.count_nonzero(p.grad) == 0 for p in model.encoder.parameters())
    assert any(
        p.grad is not None for p in model.groups()["decoder" if archi == "liae-ud" else "decoder_src"].parameters()
    )


def test_d_head_conv_k_paints_subpixel_k():
    head = RGBHead(4, double_res=True)
    with torch.no_grad():
        for k, c in enumerate(head.convs):
            c.weight.zero_()
            c.bias.fill_(float(k))
        y = head(torch.rand(1, 4, 5, 5))
    assert y.shape == (1, 3, 10, 10)
    for k in range(4):
        dy, dx = divmod(k, 2)
        torch.testing.assert_close(
            y[:, :, dy::2, dx::2], torch.full((1, 3, 5, 5), torch.sigmoid(torch.tensor(k)).item())
        )


def test_pixel_norm_unit_rms():
    x = torch.randn(3, 50) * 7
    assert torch.allclose(pixel_norm(x).square().mean(dim=1), torch.ones(3), atol=1e-4)


# -- training helpers ------------------------------------------------------------------------------------------------


def test_groups_freeze_and_reset():
    liae = build(tiny("liae-ud"))
    assert list(liae.groups()) == ["encoder", "inter_AB", "inter_B", "decoder"]
    assert list(liae.trainable_groups(random_warp=False)) == ["encoder", "inter_B", "decoder"]
    assert list(liae.trainable_groups(random_warp=True)) == list(liae.groups())
    df = build(tiny("df-ud"))
    assert list(df.groups()) == ["encoder", "inter", "decoder_src", "decoder_dst"]
    assert list(df.trainable_groups(random_warp=False)) == list(df.groups())

    enc = [p.clone() for p in liae.encoder.parameters()]
    inter = [p.clone() for p in liae.inter_B.parameters()]
    with torch.no_grad():
        for p in liae.inter_B.dense1.parameters():
            p.add_(1.0)  # make the bias non-zero so a reset is visible there too
    liae.reset_inters()
    assert all(torch.equal(a, b) for a, b in zip(enc, liae.encoder.parameters()))
    assert not torch.equal(inter[0], liae.inter_B.dense1.weight)  # fresh random weights
    assert torch.count_nonzero(liae.inter_B.dense1.bias) == 0  # zero bias again


def test_one_step_reduces_mse():
    model = build(tiny("df-ud"), seed=1)
    torch.manual_seed(2)
    src, dst = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    src_m, dst_m = (torch.rand(2, 1, 64, 64) > 0.5).float(), (torch.rand(2, 1, 64, 64) > 0.5).float()
    opt = torch.optim.Adam(model.parameters(), lr=5e-5)

    def loss_fn() -> torch.Tensor:
        out = model(src, dst)
        mse = torch.nn.functional.mse_loss
        return (
            mse(out["pred_src_src"], src)
            + mse(out["pred_dst_dst"], dst)
            + mse(out["pred_src_srcm"], src_m)
            + mse(out["pred_dst_dstm"], dst_m)
        )

    before = loss_fn()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss_fn()
    assert after.item() < before.item()


def test_export_torchscript_matches_swap(tmp_path):
    model = build(tiny("liae-ud"))
    path = tmp_path / "swap.pt"
    export_swap_torchscript(model, path)
    loaded = torch.jit.load(str(path))
    dst = torch.rand(3, 3, 64, 64)  # other batch size than the trace's example
    with torch.no_grad():
        want = model.swap(dst)
        got = loaded(dst)
    assert len(got) == 3
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
    assert model.training  # export leaves the model's mode alone


# -- discriminators --------------------------------------------------------------------------------------------------


def test_patch_strides_match_notes():
    assert patch_strides(16) == (2, 2, 2) and receptive_field((2, 2, 2)) == 15
    assert patch_strides(32) == (2, 2, 2, 2) and receptive_field((2, 2, 2, 2)) == 31
    assert patch_strides(3) == (2,)


@pytest.mark.parametrize("side", [64, 60])
def test_unet_patch_discriminator(side: int):
    d = UNetPatchDiscriminator(3, patch_size=16, base_ch=8)
    assert [c.out_channels for c in d.convs] == [16, 32, 64]  # min(base * 2^(i+1), 512)
    x = torch.rand(2, 3, side, side, requires_grad=True)
    center, full = d(x)
    small = -(-side // 8)  # three stride-2 convs, ceil each time
    assert center.shape == (2, 1, small, small) and full.shape == (2, 1, side, side)
    (center.mean() + full.mean()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in d.parameters())


def test_unet_patch_discriminator_channel_cap():
    d = UNetPatchDiscriminator(3, patch_size=300, base_ch=64)
    assert max(c.out_channels for c in d.convs) == 512


@pytest.mark.parametrize("code_res, n_convs", [(4, 1), (8, 2), (16, 3)])
def test_code_discriminator(code_res: int, n_convs: int):
    d = CodeDiscriminator(32, code_res, base_ch=8)
    convs = [m for m in d.body if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == n_convs
    assert [c.out_channels for c in convs] == [8 * min(2**i, 8) for i in range(n_convs)]
    assert [c.kernel_size[0] for c in convs] == [4] + [3] * (n_convs - 1)
    code = torch.rand(2, 32, code_res, code_res, requires_grad=True)
    logits = d(code)
    side = code_res // 2**n_convs
    assert logits.shape == (2, 1, side, side)
    logits.mean().backward()
    assert code.grad is not None and all(p.grad is not None for p in d.parameters())


def test_code_discriminator_default_width_on_df_code():
    with torch.device("meta"):
        model = SAEHD(ModelConfig(archi="df-ud"))
        d = CodeDiscriminator(model.code_shape[0], model.code_shape[1])
        assert d(torch.empty(2, *model.code_shape)).shape == (2, 1, 2, 2)
    assert d.body[0].out_channels == 256 and d.body[2].out_channels == 512
