import copy

import pytest
import torch
from torch import nn

from demonet import DemoNet
from starnet import VARIANTS, create_starnet
from starnet.dwconv import DepthwiseConv2d, extension, use_fast_backward


@pytest.fixture
def fast():
    if extension() is None:
        pytest.fail("the depthwise kernel did not build (a C++ compiler is required where tests run)")
    use_fast_backward(True)
    yield
    use_fast_backward(False)


@pytest.mark.parametrize("channels,size,kernel", [(24, 14, 7), (20, 9, 7), (13, 4, 7), (16, 8, 3)])
def test_fast_weight_gradient_equals_pytorch(fast, channels, size, kernel):
    torch.manual_seed(0)
    conv = DepthwiseConv2d(channels, kernel)
    x = torch.randn(3, channels, size, size).contiguous(memory_format=torch.channels_last).requires_grad_()
    grad = torch.randn(3, channels, size, size)
    out = conv(x)
    out.backward(grad)
    fast_grads = [t.grad.clone() for t in (x, conv.weight, conv.bias)]
    for t in (x, conv.weight, conv.bias):
        t.grad = None
    use_fast_backward(False)
    ref = conv(x)
    ref.backward(grad)
    assert torch.equal(out, ref)  # the forward is PyTorch's own
    for mine, theirs in zip(fast_grads, (x.grad, conv.weight.grad, conv.bias.grad)):
        # sums over B*H*W products in another order: the rounding error scales with the largest sum
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5 * theirs.abs().max().item())


@pytest.mark.parametrize("op", ["star", "sum"])
@pytest.mark.parametrize("name", [*VARIANTS, "demonet"])
def test_training_step_gradients_match(fast, name, op):
    torch.manual_seed(0)
    if name in VARIANTS:  # forward identical, only leaf weight gradients differ: no ReLU6 kink can flip
        model = create_starnet(name, op=op, num_classes=10).train().to(memory_format=torch.channels_last)
        x = torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    else:
        model = DemoNet(width=20, depth=2, op=op, num_classes=10, in_chans=1, patch_size=7)
        x = torch.randn(4, 1, 28, 28)
    y = torch.randint(0, 10, (4,))
    other = copy.deepcopy(model)
    nn.functional.cross_entropy(model(x), y).backward()
    use_fast_backward(False)
    nn.functional.cross_entropy(other(x), y).backward()
    for a, b in zip(model.parameters(), other.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)


def test_native_path_without_the_switch():
    use_fast_backward(False)
    conv = DepthwiseConv2d(8, 7)
    assert not conv._fast(torch.randn(1, 8, 5, 5).contiguous(memory_format=torch.channels_last))


def test_run_with_fast_dwconv_and_compiled_branches(tiny_cfg, tmp_path):
    from experiments.entry import run_job
    from starnet.ops import use_compiled_branches
    try:
        record = run_job(tiny_cfg("trainer.fast_dwconv=true", "trainer.compile_branches=true"), tmp_path / "run")
    finally:
        use_fast_backward(False)
        use_compiled_branches(False)
    assert record["status"] == "completed"
