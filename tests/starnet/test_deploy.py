import copy

import pytest
import torch
from torch import nn

from demonet import DemoNet
from starnet import VARIANTS, create_starnet, reparameterize
from starnet.fold import fold_conv_bn, fuse_conv_bn
from starnet.layers import ConvBN
from starnet.model import DeployStarBlock


def trained_like(model):
    """Non-trivial BatchNorm statistics and affines, as after training (fresh ones fold to identity)."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
    return model.eval()


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("merge", [True, False])
@pytest.mark.parametrize("op", ["star", "sum"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_starnet_reparameterized_equals_training_form(variant, op, merge):
    model = trained_like(create_starnet(variant, op=op, num_classes=100))
    deploy = reparameterize(copy.deepcopy(model), merge_branches=merge)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in deploy.modules())
    assert sum(isinstance(m, DeployStarBlock) for m in deploy.modules()) == sum(VARIANTS[variant].depths)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        assert rel_err(deploy(x), ref) < 1e-4
        assert rel_err(deploy.to(memory_format=torch.channels_last)(x), ref) < 1e-4
        # stage outputs (the detection backbone) are unchanged too
        for a, b in zip(deploy.forward_intermediates(x, intermediates_only=True),
                        model.forward_intermediates(x, intermediates_only=True)):
            assert rel_err(a, b) < 1e-4


@pytest.mark.parametrize("merge", [True, False])
@pytest.mark.parametrize("op", ["max", "gate", "concat", "bilinear"])
def test_the_zoo_reparameterizes_too(op, merge):
    """The ops beyond star and sum (concat with branches of unequal width) keep their values in the deploy form."""
    model = trained_like(create_starnet("s050", op=op, num_classes=100))
    deploy = reparameterize(copy.deepcopy(model), merge_branches=merge)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert rel_err(deploy(x), model(x)) < 1e-4


@pytest.mark.parametrize("merge", [True, False])
def test_sum_folds_its_linear_branch_and_star_does_not(merge):
    """sum: g(act(f1 y) + f2 y) = g(act(f1 y)) + (Wg W2) y + Wg b2, a C -> C conv instead of C -> 4C -> C."""
    def second_branch_outputs(op):
        block = next(m for m in reparameterize(create_starnet("s050", op=op), merge_branches=merge).modules()
                     if isinstance(m, DeployStarBlock))
        return (block.f.out_channels - block.hidden) if merge else block.f2.out_channels, block.hidden
    out, hidden = second_branch_outputs("sum")
    assert out == hidden // 3  # s050: mlp_ratio 3, so the fold leaves C = hidden / 3 channels
    out, hidden = second_branch_outputs("star")
    assert out == hidden
    # per block, f2 (hidden x C weights + hidden biases) became lin (C x C + C)
    spec = VARIANTS["s1"]
    saved = sum(depth * (spec.mlp_ratio * c - c) * (c + 1)
                for depth, c in zip(spec.depths, (spec.base_dim * 2 ** i for i in range(4))))
    params = {op: sum(p.numel() for p in
                      reparameterize(create_starnet("s1", op=op), merge_branches=merge).parameters())
              for op in ("star", "sum")}
    assert params["star"] - params["sum"] == saved  # 20% of S1's parameters


def test_starnet_without_head_keeps_its_norm():
    model = trained_like(create_starnet("s050", num_classes=0))
    deploy = reparameterize(copy.deepcopy(model))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert rel_err(deploy(x), model(x)) < 1e-4


@pytest.mark.parametrize("make", [lambda: create_starnet("s050", op="sum"), lambda: DemoNet(16, 2, op="sum")])
def test_reparameterizing_twice_changes_nothing(make):
    model = make()
    once = reparameterize(copy.deepcopy(model))
    twice = reparameterize(copy.deepcopy(once))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(twice(x), once(x))
    assert sum(p.numel() for p in twice.parameters()) == sum(p.numel() for p in once.parameters())


def test_fold_conv_bn_equals_conv_then_bn():
    block = trained_like(nn.Sequential(ConvBN(8, 16, 3, 2, 1)))[0]
    x = torch.randn(2, 8, 9, 9)
    with torch.no_grad():
        assert rel_err(fold_conv_bn(block)(x), block(x)) < 1e-5
        assert rel_err(fuse_conv_bn(block.conv, block.bn)(x), block(x)) < 1e-5
    plain = ConvBN(8, 8, 1, with_bn=False)
    assert fold_conv_bn(plain) is plain.conv
    other = nn.ReLU()
    assert fold_conv_bn(other) is other


def test_reparameterize_rejects_other_models():
    with pytest.raises(TypeError, match="StarNet or DemoNet"):
        reparameterize(nn.Linear(2, 2))
