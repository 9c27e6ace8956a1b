"""accelerate(): per-model kernel options, same state dict, and every registered op on every path."""
import copy

import pytest
import torch
from torch import nn

from demonet import DemoNet
from starnet import FUSION_OPS, KernelOptions, accelerate, create_starnet, register_op
from starnet.kernels import dwconv, fast_bn, fused_mlp
from starnet.kernels.codes import OPS

ALL = dict(fast_dwconv=True, fused_mlp=True, fast_batchnorm=True, compile_branches=True)


@pytest.fixture
def kernels_built(require_kernel):
    for module, what in ((dwconv, "depthwise"), (fused_mlp, "fused MLP"), (fast_bn, "BatchNorm")):
        require_kernel(module.extension, what)


@pytest.fixture
def diff_op():
    """A test-only op without a kernel code: ``a - b``."""
    register_op("diff_test")(lambda a, b: a - b)
    yield "diff_test"
    FUSION_OPS.pop("diff_test")


def kernel_modules(model):
    return [m for m in model.modules() if isinstance(getattr(type(m), "kernels", None), KernelOptions)]


def step(model, x, y):
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


def assert_same_step(model, x, y, **kernels):
    """One training step of ``accelerate(model, **kernels)`` and of a plain copy: same loss and gradients."""
    other = copy.deepcopy(model)
    assert accelerate(model, **kernels) is model
    loss, grads = step(model, x, y)
    ref, ref_grads = step(other, x, y)
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    # Float rounding scales with the gradients' size: a parameter whose gradient nearly cancels (a BN bias in
    # a sum net) gets the whole model's scale as its floor, not its own near-zero one (seen at 1 thread).
    scale = max(g.abs().max().item() for g in ref_grads)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item() + 1e-6 * scale)


def starnet_and_batch(op, act="none"):
    torch.manual_seed(0)
    model = create_starnet("s050", op=op, act=act, num_classes=10, width=8, depths=[1, 1, 1, 1]).train()
    x = torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    return model.to(memory_format=torch.channels_last), x, torch.randint(0, 10, (4,))


def demonet_and_batch(op):
    torch.manual_seed(0)
    model = DemoNet(width=16, depth=2, op=op, num_classes=10, in_chans=1, patch_size=4, layer_scale=1.0)
    return model.train(), torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))


# The zoo (starnet/ops.py): ops without a kernel code (max, gate, concat), presets with one (bilinear: star after
# none) and without (swiglu: silu has no kernel code), and a test-only op registered here.
ZOO = ["star", "sum", "diff", "max", "gate", "concat", "bilinear", "swiglu"]


def takes_the_kernel(op, act, act_codes, op_code=None):
    """Whether a block of ``op`` after ``act`` has kernel codes for both (presets resolved as the blocks do);
    ``op_code``: the kernel's lookup of op codes (default: the fused MLP's, ``op_kernel_code``)."""
    from starnet.ops import branch_merge, op_kernel_code
    op, act = branch_merge(op, act)
    return (op_code or op_kernel_code)(op) is not None and act in act_codes


@pytest.mark.parametrize("op", ZOO)
def test_every_op_through_every_path_on_starnet(kernels_built, diff_op, op, monkeypatch):
    """The fused MLP takes ops with a kernel code; an op without one takes the plain (or compiled) merge there,
    with the same loss and gradients."""
    from starnet.ops import ACT_KERNEL_CODES
    op = diff_op if op == "diff" else op
    calls = []
    real = fused_mlp._FusedMLPFn.apply
    monkeypatch.setattr(fused_mlp._FusedMLPFn, "apply", lambda *a: calls.append(a[-2]) or real(*a))
    assert_same_step(*starnet_and_batch(op), **ALL)
    assert bool(calls) == takes_the_kernel(op, "none", ACT_KERNEL_CODES)  # star/sum/bilinear: the kernel ran


@pytest.mark.parametrize("op", ZOO)
def test_every_op_through_every_path_on_demonet(kernels_built, diff_op, op, monkeypatch):
    """DemoNet's fused block too (gelu: DemoNet's activation), which declines the ops without a code."""
    from starnet.kernels import demo_block
    from starnet.ops import BLOCK_ACT_KERNEL_CODES, block_op_kernel_code
    op = diff_op if op == "diff" else op
    calls = []
    real = demo_block._DemoBlockFn.apply
    monkeypatch.setattr(demo_block._DemoBlockFn, "apply", lambda *a: calls.append(1) or real(*a))
    assert_same_step(*demonet_and_batch(op), **ALL, fused_block=True)
    assert bool(calls) == takes_the_kernel(op, "gelu", BLOCK_ACT_KERNEL_CODES, block_op_kernel_code)


def test_the_kernels_decline_what_they_do_not_implement():
    """Called directly, the fused MLP returns None (the caller's plain path) for an op without a code and for
    branches of unequal width (concat's), even if handed a code."""
    from starnet.model import StarBlock
    from starnet.ops import act_kernel_code
    x = torch.randn(2, 8, 6, 6).contiguous(memory_format=torch.channels_last)
    for op in ("max", "gate", "concat"):
        block = StarBlock(8, 3, op=op, act="relu6")
        convs = (block.f1.conv, block.f2.conv, block.g.conv)
        assert fused_mlp.fused_mlp(x, *convs, act_kernel_code("relu6"), block.fuse.kernel_code) is None
    assert fused_mlp.fused_mlp(x, *convs, act_kernel_code("relu6"), OPS["star"]) is None  # 13 + 12 -> 25


def test_state_dict_and_parameters_unchanged():
    model = create_starnet("s050", num_classes=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = list(model.parameters())
    accelerate(model, **ALL)
    after = model.state_dict()
    assert list(after) == list(before) and all(torch.equal(before[k], after[k]) for k in before)
    assert all(a is b for a, b in zip(model.parameters(), params))  # an optimizer built before still holds them
    model.load_state_dict(create_starnet("s050", num_classes=10).state_dict())  # checkpoints load as before


@pytest.mark.parametrize("make", [lambda: create_starnet("s050", num_classes=10),
                                  lambda: DemoNet(16, 2, num_classes=10, in_chans=1, patch_size=4)])
def test_options_are_per_model_and_all_off_is_plain(make):
    model, other = make(), make()
    modules = kernel_modules(model)
    assert modules and all(m.kernels == KernelOptions() for m in modules)  # plain by default
    accelerate(model, fast_dwconv=True, compile_branches=True)
    assert all(m.kernels == KernelOptions(fast_dwconv=True, compile_branches=True) for m in modules)
    assert all(m.kernels == KernelOptions() for m in kernel_modules(other))  # no process-wide switch
    accelerate(model)
    assert all(m.kernels == KernelOptions() for m in modules)


def test_the_switches_are_kernel_options_fields_and_another_name_is_one_clear_error():
    """KernelOptions is the one declaration of the switches: accelerate() takes its fields, and nothing else."""
    from dataclasses import fields

    from starnet.kernels.accelerate import SWITCHES
    assert SWITCHES == tuple(f.name for f in fields(KernelOptions))
    model = create_starnet("s050", num_classes=10)
    accelerate(model, **dict.fromkeys(SWITCHES, True))
    assert all(m.kernels == KernelOptions(**dict.fromkeys(SWITCHES, True)) for m in kernel_modules(model))
    with pytest.raises(TypeError, match=r"^accelerate\(\) has no switch fast_dw; its switches: fast_dwconv, "):
        accelerate(model, fast_dw=True)


def test_reaches_every_kernel_aware_module():
    from starnet.model import StarBlock, Stem
    from demonet.model import DemoBlock
    kinds = {type(m) for m in kernel_modules(create_starnet("s050"))}
    assert kinds == {Stem, StarBlock, dwconv.DepthwiseConv2d, fast_bn.BatchNorm2d}
    assert {type(m) for m in kernel_modules(DemoNet(16, 1))} == {DemoBlock, dwconv.DepthwiseConv2d}


def test_accelerated_model_reparameterizes_and_evaluates_as_plain():
    model, x, _ = starnet_and_batch("sum", act="relu6")
    other = copy.deepcopy(model).eval()
    accelerate(model, **ALL).eval()
    with torch.no_grad():
        assert torch.equal(model(x), other(x))  # inference takes PyTorch's ops
        torch.testing.assert_close(model.reparameterize()(x), other(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("make", [starnet_and_batch, demonet_and_batch], ids=["starnet", "demonet"])
def test_an_accelerated_model_scripts_to_its_plain_path(make):
    """torch.jit.script of a model with every kernel switched on compiles the plain path: a training-mode forward
    equals the plain model's."""
    model, x, _ = make("star")
    other = copy.deepcopy(model)
    scripted = torch.jit.script(accelerate(model, **ALL, fused_block=True))
    with torch.jit.optimized_execution(False):
        torch.testing.assert_close(scripted(x), other(x))
