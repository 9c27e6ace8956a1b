import pytest
import torch

from starnet import VARIANTS, create_starnet

# Paper Table 5 / Table 13: params (M) as printed.
PAPER_PARAMS = {"s050": 0.54, "s100": 1.04, "s150": 1.56, "s1": 2.9, "s2": 3.7, "s3": 5.8, "s4": 7.5}


def n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_params_match_paper_table(variant):
    digits = 2 if PAPER_PARAMS[variant] < 2 else 1
    assert round(n_params(create_starnet(variant)) / 1e6, digits) == PAPER_PARAMS[variant]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_state_dict_and_logits_equal_timm(variant):
    timm = pytest.importorskip("timm")
    ours, theirs = create_starnet(variant).eval(), timm.create_model(f"starnet_{variant}").eval()
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape for k in a)
    ours.load_state_dict(b)  # the released ImageNet weights load unchanged
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


def test_sum_variant_has_same_params_but_other_outputs():
    star, sum_ = create_starnet("s050"), create_starnet("s050", op="sum")
    assert n_params(star) == n_params(sum_)
    sum_.load_state_dict(star.state_dict())
    x = torch.randn(1, 3, 64, 64)
    assert not torch.allclose(star.eval()(x), sum_.eval()(x))


def test_per_stage_ops():
    m = create_starnet("s050", op=["sum", "sum", "star", "star"])
    assert [blk.fuse.op for stage in m.stages for blk in list(stage)[1:]] == ["sum", "sum", "star", "star", "star",
                                                                              "star"]
    with pytest.raises(ValueError, match="3 entries but StarNet has 4 stages"):
        create_starnet("s050", op=["sum", "star", "star"])


def test_stage_outputs_for_detection():
    m = create_starnet("s1", num_classes=0)
    feats = m.forward_intermediates(torch.randn(1, 3, 128, 128), indices=(1, 2, 3), intermediates_only=True)
    assert [f.shape[1] for f in feats] == [info["num_chs"] for info in m.feature_info[1:]] == [48, 96, 192]
    assert [128 // f.shape[-1] for f in feats] == [info["reduction"] for info in m.feature_info[1:]] == [8, 16, 32]


def test_init_choice_is_explicit():
    torch.manual_seed(0)
    official = create_starnet("s050", init="official").stages[2][1].f1.conv.weight
    timm_like = create_starnet("s050", init="timm").stages[2][1].f1.conv.weight
    # PyTorch's default (kaiming-uniform) is bounded by 1/sqrt(fan_in); trunc_normal(.02) has std .02.
    assert abs(timm_like.std().item() - 0.02) < 0.003
    assert official.abs().max().item() <= 1 / 64 ** 0.5 + 1e-6 and abs(official.std().item() - 0.02) > 0.01
    with pytest.raises(ValueError, match="unknown init"):
        create_starnet("s050", init="xavier")


def test_overrides_and_errors():
    assert [info["num_chs"] for info in create_starnet("s1", width=16).feature_info] == [16, 32, 64, 128]
    with pytest.raises(ValueError, match="unknown StarNet variant 's9'"):
        create_starnet("s9")
    with pytest.raises(ValueError, match="width must be a positive integer"):
        create_starnet("s1", width=0)


def test_a_depth_override_has_one_entry_per_stage():
    import re
    import pytest
    from starnet import create_starnet
    import timm
    for depths in ([1, 1, 1], [1, 1, 1, 1, 1]):
        with pytest.raises(ValueError, match=f"StarNet has 4 stages: .*got {re.escape(str(depths))}"):
            create_starnet("s050", depths=depths)
        with pytest.raises(ValueError, match="StarNet has 4 stages"):  # timm's path is the same check
            timm.create_model("starbench_starnet_s050", depths=depths)
    assert len(create_starnet("s050", width=8, depths=[1, 1, 1, 1]).stages) == 4
