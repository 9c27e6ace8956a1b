import copy

import pytest
import torch
from torch import nn

from demonet import DemoNet
from starnet import VARIANTS, accelerate
from starnet.kernels.dwconv import DepthwiseConv2d, extension


@pytest.fixture
def fast(require_kernel):
    require_kernel(extension, "depthwise")


@pytest.mark.parametrize("channels,size,kernel", [(24, 14, 7), (20, 9, 7), (13, 4, 7), (16, 8, 3)])
def test_fast_weight_gradient_equals_pytorch(fast, channels, size, kernel):
    torch.manual_seed(0)
    conv = accelerate(DepthwiseConv2d(channels, kernel), fast_dwconv=True)
    x = torch.randn(3, channels, size, size).contiguous(memory_format=torch.channels_last).requires_grad_()
    grad = torch.randn(3, channels, size, size)
    out = conv(x)
    out.backward(grad)
    fast_grads = [t.grad.clone() for t in (x, conv.weight, conv.bias)]
    for t in (x, conv.weight, conv.bias):
        t.grad = None
    accelerate(conv)  # all off: the plain module again
    assert not conv._fast(x)
    ref = conv(x)
    ref.backward(grad)
    assert torch.equal(out, ref)  # the forward is PyTorch's own
    for mine, theirs in zip(fast_grads, (x.grad, conv.weight.grad, conv.bias.grad)):
        # sums over B*H*W products in another order: the rounding error scales with the largest sum
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5 * theirs.abs().max().item())


@pytest.mark.parametrize("op", ["star", "sum"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_training_step_gradients_match(fast, starnet_step_pair, variant, op):
    # the forward is identical, only leaf weight gradients differ: no ReLU6 kink can flip
    _, _, model, other = starnet_step_pair(variant, op, "relu6", size=32, fast_dwconv=True)
    for a, b in zip(model.parameters(), other.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("op", ["star", "sum"])
def test_demonet_training_step_gradients_match(fast, op):
    torch.manual_seed(0)
    model = DemoNet(width=20, depth=2, op=op, num_classes=10, in_chans=1, patch_size=7)
    other = copy.deepcopy(model)
    accelerate(model, fast_dwconv=True)
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    nn.functional.cross_entropy(model(x), y).backward()
    nn.functional.cross_entropy(other(x), y).backward()
    for a, b in zip(model.parameters(), other.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)


def test_native_path_unless_accelerated():
    conv = DepthwiseConv2d(8, 7)
    x = torch.randn(1, 8, 5, 5).contiguous(memory_format=torch.channels_last)
    assert not conv._fast(x)
    other = accelerate(DepthwiseConv2d(8, 7), fast_dwconv=True)
    assert other._fast(x) == (extension() is not None)
    assert not conv._fast(x)  # per module: accelerating one conv leaves every other one alone


def test_scripted_is_the_plain_conv():
    """TorchScript compiles nn.Conv2d's forward, even after accelerate(): the kernel is an autograd Function."""
    conv = accelerate(DepthwiseConv2d(8, 7), fast_dwconv=True)
    scripted = torch.jit.script(conv)
    x = torch.randn(2, 8, 9, 9).contiguous(memory_format=torch.channels_last).requires_grad_()
    y = scripted(x)
    assert torch.equal(y, nn.functional.conv2d(x, conv.weight, conv.bias, padding=3, groups=8))
    y.sum().backward()
    assert conv.weight.grad is not None and x.grad is not None


def test_run_with_fast_dwconv_and_compiled_branches(tiny_cfg, tmp_path, monkeypatch):
    from experiments.entry import run_job
    from starnet.kernels import dwconv as module
    calls = []
    real = module._DepthwiseConvFn.apply
    monkeypatch.setattr(module._DepthwiseConvFn, "apply", lambda *a: calls.append(1) or real(*a))
    # fused_block (on by default) would run DemoNet's whole block, its depthwise conv included, as one kernel
    record = run_job(tiny_cfg("trainer.fast_dwconv=true", "trainer.compile_branches=true", "trainer.fused_block=false"),
                     tmp_path / "run")
    assert record["status"] == "completed"
    assert calls, "trainer.fast_dwconv=true did not reach the depthwise convs"
