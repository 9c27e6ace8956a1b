import copy

import pytest
import torch
from torch import nn

from starnet import VARIANTS, accelerate
from starnet.kernels.codes import ACTS
from starnet.kernels.fast_bn import BatchNorm2d, extension, fast_batch_norm
from starnet.ops import act_kernel_code

ACT_FNS = {None: lambda t: t, "relu": nn.functional.relu, "relu6": nn.functional.relu6}
CODES = {None: ACTS["none"], "relu": act_kernel_code("relu"), "relu6": act_kernel_code("relu6")}


@pytest.fixture
def fast(require_kernel):
    require_kernel(extension, "BatchNorm")


def channels_last(*shape, scale=1.0, shift=0.0):
    return (scale * torch.randn(*shape) + shift).contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("act", [None, "relu", "relu6"])
@pytest.mark.parametrize("shape", [(3, 24, 9, 7), (2, 5, 3, 3), (2, 13, 70, 70)])  # last: > 64 chunks of rows
def test_equals_pytorch_over_steps(fast, act, shape):
    torch.manual_seed(0)
    bn = BatchNorm2d(shape[1], momentum=0.3)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2), bn.bias.uniform_(-1, 1)
    ref = copy.deepcopy(bn)
    for _ in range(2):  # the second step starts from updated running statistics
        x = channels_last(*shape, scale=3, shift=2).requires_grad_()  # mean far from 0: tests the variance sum
        x_ref = x.detach().clone().requires_grad_()
        grad = torch.randn(shape)
        y = fast_batch_norm(bn, x, CODES[act])
        assert y is not None and y.is_contiguous(memory_format=torch.channels_last)
        y.backward(grad)
        y_ref = ACT_FNS[act](ref(x_ref))  # a plain BatchNorm2d: not accelerated
        y_ref.backward(grad)
        torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-5 * x_ref.grad.abs().max().item())
        for name in ("weight", "bias"):
            a, b = getattr(bn, name).grad, getattr(ref, name).grad
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item())
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            torch.testing.assert_close(getattr(bn, name), getattr(ref, name), rtol=1e-5, atol=1e-6)


def test_falls_back_where_it_does_not_apply(fast):
    bn = BatchNorm2d(8)
    x = channels_last(2, 8, 4, 4)
    assert fast_batch_norm(bn, x) is not None
    assert fast_batch_norm(bn, x.contiguous()) is None                  # NCHW
    assert fast_batch_norm(bn, x.double()) is None                      # not float32
    assert act_kernel_code("gelu") is None and fast_batch_norm(bn, x, None) is None  # activation the kernel lacks
    assert fast_batch_norm(bn.eval(), x) is None                        # inference: running statistics
    assert fast_batch_norm(BatchNorm2d(8, momentum=None).train(), x) is None  # cumulative average
    assert fast_batch_norm(nn.SyncBatchNorm(8), x) is None               # DDP: statistics across ranks


def test_module_uses_the_kernel_only_when_accelerated(fast, monkeypatch):
    from starnet.kernels import fast_bn as module
    calls = []
    real = module._BatchNormFn.apply
    monkeypatch.setattr(module._BatchNormFn, "apply", lambda *a: calls.append(1) or real(*a))
    bn, x = BatchNorm2d(8).train(), channels_last(2, 8, 4, 4)
    bn(x)
    assert not calls  # plain by default
    accelerate(bn, fast_batchnorm=True)(x)
    assert len(calls) == 1
    accelerate(bn)(x)
    assert len(calls) == 1


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("kwargs", [{}, dict(momentum=None), dict(track_running_stats=False), dict(affine=False)],
                         ids=["default", "cumulative", "untracked", "no-affine"])
def test_scripted_module_is_pytorchs_batchnorm(kwargs, train):
    """TorchScript compiles the plain path (its restatement of torch's forward), even after accelerate(): outputs
    and running statistics equal nn.BatchNorm2d's over steps."""
    torch.manual_seed(0)
    bn = BatchNorm2d(5, **kwargs).train(train)
    if bn.running_mean is not None:
        with torch.no_grad():
            bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2)
    ref = nn.BatchNorm2d(5, **kwargs).train(train)
    ref.load_state_dict(bn.state_dict())
    scripted = torch.jit.script(accelerate(bn, fast_batchnorm=True))
    for _ in range(2):
        x = channels_last(3, 5, 6, 6, scale=2, shift=1)  # a layout the kernel takes eagerly
        assert torch.equal(scripted(x), ref(x))
    ours, theirs = scripted.state_dict(), ref.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_state_dict_is_pytorchs():
    assert BatchNorm2d(8).state_dict().keys() == nn.BatchNorm2d(8).state_dict().keys()
    assert isinstance(BatchNorm2d(8), nn.BatchNorm2d)  # what SyncBatchNorm conversion and ultralytics look for


@pytest.mark.parametrize("op", ["star", "sum"])
# Every variant without activations: a kink-free network, so float-rounding differences stay rounding
# (with ReLU6, a pre-activation within rounding of 0 or 6 may switch sides and move one gradient entry
# by its full size); and S050 with its ReLU6.
@pytest.mark.parametrize("variant,act", [(v, "none") for v in VARIANTS] + [("s050", "relu6")])
def test_training_step_gradients_match(fast, starnet_step_pair, variant, act, op):
    loss, ref, model, other = starnet_step_pair(variant, op, act, fast_batchnorm=True)
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    for a, b in zip(model.parameters(), other.parameters()):
        # rounding differences of every BatchNorm accumulate over up to 23 blocks: scale with the largest
        # entry; the floor is for biases right before a BatchNorm, whose true gradient is 0 (rounding noise)
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-3, atol=1e-4 * b.grad.abs().max().item() + 1e-6)
    for a, b in zip(model.buffers(), other.buffers()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_run_with_fast_batchnorm_uses_the_kernel_and_matches(tiny_cfg, tmp_path, monkeypatch):
    from experiments.entry import run_job
    from starnet.kernels import fast_bn as module
    calls = []
    real = module._BatchNormFn.apply
    monkeypatch.setattr(module._BatchNormFn, "apply", lambda *a: calls.append(a[-1]) or real(*a))
    starnet = ("model=starnet", "model.variant=s050", "width=8", "depth=[1,1,1,1]", "trainer.epochs=1")
    fast_run = run_job(tiny_cfg(*starnet, "trainer.fast_batchnorm=true"), tmp_path / "fast")
    assert 2 in calls and 0 in calls, "trainer.fast_batchnorm=true did not reach the stem and the blocks"
    n = len(calls)
    plain = run_job(tiny_cfg(*starnet, "trainer.fast_paths=false"), tmp_path / "plain")
    assert len(calls) == n  # trainer.fast_paths=false: the plain path, whatever the switches say
    assert fast_run["status"] == plain["status"] == "completed"
    assert fast_run["history"][0]["train_loss"] == pytest.approx(plain["history"][0]["train_loss"], rel=1e-4)
