import pytest
import torch

import copy

from demonet import DemoNet, DeployDemoBlock, PointDemoNet
from starnet import reparameterize


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def official_params(width, depth, num_classes=1000, in_chans=3, patch=16):
    """Count of the official imagenet/demonet.py, term by term."""
    block = (width * 6 * width + 6 * width) + (3 * width * width + width) + 49 * width + width + 2 * width + width
    stem = in_chans * patch * patch * width + width
    head = 2 * width + width * num_classes + num_classes
    return stem + depth * block + head


@pytest.mark.parametrize("width,depth", [(32, 12), (96, 12), (192, 10), (288, 12), (48, 3)])
def test_param_count_equals_official(width, depth):
    assert n_params(DemoNet(width, depth)) == official_params(width, depth)


def test_param_count_against_paper():
    # Paper sec. A.2: DemoNet(288, 12) ~ 9.68M (the paper's 1.26M for width 96 disagrees with the
    # official code, which gives 1.235M; see docs/models.md).
    assert round(n_params(DemoNet(288, 12)) / 1e6, 2) == 9.68
    assert n_params(DemoNet(96, 12)) == 1_235_464


def test_shapes_and_ops_differ():
    x = torch.randn(2, 1, 28, 28)
    star = DemoNet(16, 2, op="star", num_classes=10, in_chans=1, patch_size=4, layer_scale=1.0)
    sum_ = DemoNet(16, 2, op="sum", num_classes=10, in_chans=1, patch_size=4, layer_scale=1.0)
    sum_.load_state_dict(star.state_dict())  # same weights, only the op differs
    assert n_params(star) == n_params(sum_)
    ys, ya = star(x), sum_(x)
    assert ys.shape == (2, 10)
    assert not torch.allclose(ys, ya)


def test_no_activation_ablation_is_polynomial():
    m = DemoNet(8, 1, act="none", num_classes=3, in_chans=1, patch_size=4)
    assert not any(isinstance(mod, torch.nn.GELU) for mod in m.modules())


@pytest.mark.parametrize("kwargs,msg", [({"width": 0}, "width must be a positive integer"),
                                         ({"depth": -1}, "depth must be a positive integer"),
                                         ({"op": "mul"}, "unknown op 'mul'")])
def test_bad_arguments(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        DemoNet(**{"width": 8, "depth": 1, **kwargs})


def test_point_demonet():
    m = PointDemoNet(width=100, depth=4, op="star")
    assert m(torch.randn(5, 2)).shape == (5, 2)


@pytest.mark.parametrize("op", ["star", "sum", "max", "concat", "swiglu"])
def test_demonet_reparameterized_equals_training_form(op):
    model = DemoNet(width=32, depth=3, op=op, num_classes=10, in_chans=1, patch_size=4)
    for block in model.blocks:
        block.gamma.data.uniform_(0.2, 1.0)  # as after training (the init 1e-6 would hide a wrong fold)
    model.eval()
    deploy = reparameterize(copy.deepcopy(model))
    assert all(isinstance(block, DeployDemoBlock) and not hasattr(block, "gamma") for block in deploy.blocks)
    # sum: the linear second branch folds into g W2 (f: 32 -> 96 + 32 instead of 32 -> 192)
    widths = {"sum": 128, "concat": 145}  # concat: branches of 73 + 72 (starnet.ops.branch_widths)
    assert all(block.f.out_features == widths.get(op, 192) for block in deploy.blocks)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert rel_err(deploy(x), model(x)) < 1e-4


def test_demonet_takes_one_op():
    import pytest
    from demonet import DemoNet, PointDemoNet
    for cls in (DemoNet, PointDemoNet):
        with pytest.raises(ValueError, match=r"DemoNet takes one op for all its blocks .*\['sum', 'star'\]; a list of "
                                             "per-stage ops is for StarNet"):
            cls(width=8, depth=1, op=["sum", "star"])
