import pytest
import torch

from starnet import VARIANTS, accelerate
from starnet.kernels.codes import OPS
from starnet.kernels.fused_mlp import MAX_CHANNELS, extension, fused_mlp, tile_rows
from starnet.model import StarBlock
from starnet.ops import act_kernel_code, op_kernel_code


@pytest.fixture
def fused(require_kernel):
    require_kernel(extension, "fused MLP")


def unfused(block, x):
    return block.g.conv(block.fuse(block.act(block.f1(x)), block.f2(x)))


def grads(*tensors):
    out = [t.grad.clone() for t in tensors]
    for t in tensors:
        t.grad = None
    return out


@pytest.mark.parametrize("act", ["relu6", "relu", "none"])
@pytest.mark.parametrize("op", ["star", "sum"])
@pytest.mark.parametrize("tile", [None, 128])  # 128: several tiles and a partial last one (3*9*9 = 243 rows)
def test_fused_equals_unfused(fused, act, op, tile):
    torch.manual_seed(0)
    block = StarBlock(24, 4, op=op, act=act)
    x = (3 * torch.randn(3, 24, 9, 9)).contiguous(memory_format=torch.channels_last).requires_grad_()
    grad = torch.randn(3, 24, 9, 9)
    params = (x, block.f1.conv.weight, block.f1.conv.bias, block.f2.conv.weight, block.f2.conv.bias,
              block.g.conv.weight, block.g.conv.bias)
    out = fused_mlp(x, block.f1.conv, block.f2.conv, block.g.conv, act_kernel_code(act), op_kernel_code(op), tile)
    assert out is not None and out.is_contiguous(memory_format=torch.channels_last)
    out.backward(grad)
    mine = grads(*params)
    ref = unfused(block, x)
    ref.backward(grad)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(mine, grads(*params)):  # sums over 243 pixels in another order: float rounding scales with them
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item())


@pytest.mark.parametrize("op", ["star", "sum"])
# Every variant without activations: a kink-free network, so float-rounding differences stay rounding
# (with ReLU6, a pre-activation within rounding of 0 or 6 may switch sides and move one gradient entry
# by its full size); and S050 with its ReLU6.
@pytest.mark.parametrize("variant,act", [(v, "none") for v in VARIANTS] + [("s050", "relu6")])
def test_training_step_gradients_match(fused, starnet_step_pair, variant, act, op):
    loss, ref, model, other = starnet_step_pair(variant, op, act, fused_mlp=True)
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    for a, b in zip(model.parameters(), other.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)


def test_falls_back_where_it_does_not_apply(fused):
    block = StarBlock(24, 4)
    x = torch.randn(2, 24, 5, 5).contiguous(memory_format=torch.channels_last)
    args = (block.f1.conv, block.f2.conv, block.g.conv)
    relu6 = act_kernel_code("relu6")
    assert fused_mlp(x, *args, relu6, OPS["star"]) is not None
    assert fused_mlp(x.contiguous(), *args, relu6, OPS["star"]) is None   # NCHW
    assert act_kernel_code("gelu") is None and fused_mlp(x, *args, None, OPS["star"]) is None  # an activation it lacks
    assert op_kernel_code("max") is None and fused_mlp(x, *args, relu6, None) is None      # an op without a code
    with torch.no_grad():
        assert fused_mlp(x, *args, relu6, OPS["star"]) is None            # inference: PyTorch's path
    wide = StarBlock(MAX_CHANNELS, 4)
    x = torch.randn(2, MAX_CHANNELS, 5, 5).contiguous(memory_format=torch.channels_last)
    assert fused_mlp(x, wide.f1.conv, wide.f2.conv, wide.g.conv, relu6, OPS["star"]) is None


def test_block_uses_the_kernel_only_when_accelerated(fused, monkeypatch):
    from starnet.kernels import fused_mlp as module
    calls = []
    real = module._FusedMLPFn.apply
    monkeypatch.setattr(module._FusedMLPFn, "apply", lambda *a: calls.append(a[-3:-1]) or real(*a))
    block = StarBlock(24, 4, op="sum").train()
    x = torch.randn(2, 24, 5, 5).contiguous(memory_format=torch.channels_last)
    block(x)
    assert not calls  # plain by default
    accelerate(block, fused_mlp=True)(x)
    assert calls == [(act_kernel_code("relu6"), op_kernel_code("sum"))]  # the codes come from the registry
    accelerate(block)(x)
    assert len(calls) == 1


def test_tile_rows_keep_the_intermediate_near_2_mb():
    assert [tile_rows(h) for h in (96, 192, 384, 768)] == [2048, 1024, 512, 256]
    assert tile_rows(10 ** 6) == 128 and tile_rows(1) == 4096


def test_run_with_fused_mlp_uses_the_kernel_and_matches(tiny_cfg, tmp_path, monkeypatch):
    from experiments.entry import run_job
    from starnet.kernels import fused_mlp as module
    calls = []
    real = module._FusedMLPFn.apply
    monkeypatch.setattr(module._FusedMLPFn, "apply", lambda *a: calls.append(1) or real(*a))
    starnet = ("model=starnet", "model.variant=s050", "width=8", "depth=[1,1,1,1]", "trainer.epochs=1")
    fused_run = run_job(tiny_cfg(*starnet, "trainer.fused_mlp=true"), tmp_path / "fused")
    assert calls, "trainer.fused_mlp=true did not reach the blocks"
    n = len(calls)
    plain = run_job(tiny_cfg(*starnet, "trainer.fast_paths=false"), tmp_path / "plain")
    assert len(calls) == n  # trainer.fast_paths=false: the plain path, whatever the switches say
    assert fused_run["status"] == plain["status"] == "completed"
    assert fused_run["history"][0]["train_loss"] == pytest.approx(plain["history"][0]["train_loss"], rel=1e-4)
