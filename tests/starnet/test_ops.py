import pytest
import torch

from starnet import FUSION_OPS, Fusion, get_op, make_act, register_op


def test_star_multiplies_and_sum_adds():
    a, b = torch.tensor([2.0, -1.0]), torch.tensor([3.0, 4.0])
    assert torch.equal(get_op("star")(a, b), torch.tensor([6.0, -4.0]))
    assert torch.equal(get_op("sum")(a, b), torch.tensor([5.0, 3.0]))


def test_unknown_op_lists_valid_names():
    with pytest.raises(ValueError, match="unknown op 'mul'; valid ops: concat, gate, max, star, sum; presets"):
        get_op("mul")


def test_registering_an_op_makes_it_usable_by_name():
    @register_op("max_test")
    def max_fusion(a, b):
        return torch.maximum(a, b)
    try:
        assert Fusion("max_test")(torch.tensor([1.0]), torch.tensor([2.0])).item() == 2.0
        with pytest.raises(ValueError, match="already registered"):
            register_op("max_test")(max_fusion)
    finally:
        FUSION_OPS.pop("max_test")


def test_kernel_codes_come_from_the_registry():
    from starnet.kernels.fused_mlp import OP_STAR, OP_SUM
    from starnet.ops import act_kernel_code, op_kernel_code
    assert (op_kernel_code("star"), op_kernel_code("sum")) == (OP_STAR, OP_SUM)
    assert Fusion("sum").kernel_code == OP_SUM
    assert act_kernel_code("gelu") is None and act_kernel_code("relu6") is not None

    @register_op("max_test")
    def max_fusion(a, b):
        return torch.maximum(a, b)
    try:
        assert op_kernel_code("max_test") is None  # no code: the kernels leave it to PyTorch
    finally:
        FUSION_OPS.pop("max_test")
    register_op("coded_test", kernel_code=OP_SUM)(lambda a, b: a + b)
    try:
        assert op_kernel_code("coded_test") == OP_SUM
    finally:
        FUSION_OPS.pop("coded_test")
    assert op_kernel_code("coded_test") is None  # gone with the op
    with pytest.raises(TypeError, match="kernel_code"):
        register_op("bad_test", kernel_code="sum")


def test_activation_registry():
    assert isinstance(make_act("none"), torch.nn.Identity)
    assert make_act("relu6")(torch.tensor([7.0])).item() == 6.0
    with pytest.raises(ValueError, match="unknown activation"):
        make_act("swishy")


@pytest.mark.parametrize("op", ["star", "sum"])
def test_compiled_branches_match_eager(op):
    """trainer.compile_branches=true: op(act(a), b) as one compiled kernel, same values and gradients."""
    from starnet.ops import act_then_op
    a = torch.randn(2, 8, 5, 5, requires_grad=True)
    b = torch.randn(2, 8, 5, 5, requires_grad=True)
    act, fusion = make_act("relu6"), Fusion(op)
    a.data[0, 0] = 7.0  # ReLU6's clipped region must get zero gradient on both paths
    results = []
    for compiled in (False, True):
        out = act_then_op("relu6", act, fusion, a, b, compiled=compiled)
        out.backward(torch.ones_like(out))
        results.append((out.detach(), a.grad.clone(), b.grad.clone()))
        a.grad = b.grad = None
    for eager, compiled in zip(*results):
        torch.testing.assert_close(compiled, eager)
