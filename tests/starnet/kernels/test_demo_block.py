"""DemoNet's fused block kernel (starnet/kernels/demo_block.py): the plain block's outputs and gradients to float
rounding, for every op x activation with a code, token grid, width class and tile split; a whole training step;
the fallbacks."""
import copy

import pytest
import torch
from torch import nn

from demonet import DemoNet
from demonet.model import DemoBlock
from starnet import FUSION_OPS, accelerate, register_op
from starnet.kernels import demo_block
from starnet.kernels.demo_block import extension, fused_demo_block
from starnet.ops import block_act_kernel_code, block_op_kernel_code, op_kernel_code


@pytest.fixture
def fused(require_kernel):
    require_kernel(extension, "DemoNet block")


@pytest.fixture
def calls(monkeypatch):
    """The number of fused-block calls so far (a list, one entry per call)."""
    seen = []
    real = demo_block._DemoBlockFn.apply
    monkeypatch.setattr(demo_block._DemoBlockFn, "apply", lambda *a: seen.append(1) or real(*a))
    return seen


def grads(*tensors):
    out = [t.grad.clone() for t in tensors]
    for t in tensors:
        t.grad = None
    return out


def assert_close_grads(mine, ref):
    for a, b in zip(mine, ref):  # sums over the batch's tokens in another order: rounding scales with the largest
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item() + 1e-7)


@pytest.mark.parametrize("act", ["gelu", "none", "relu", "silu"])   # silu: the zoo build's
@pytest.mark.parametrize("op", ["star", "sum", "max", "gate"])      # max, gate: the zoo build's
# (batch, grid, channels, tile): 7x7 tokens (patch 4 on 28 px), 14x14 (patch 2), channel counts that take every
# chunk width of the conv loops (32+16+8+1s), a tile split with a partial last tile
@pytest.mark.parametrize("batch,grid,dim,tile", [(5, 7, 16, None), (3, 14, 8, None), (5, 7, 59, 2), (4, 5, 12, 3)])
def test_fused_equals_plain_block(fused, act, op, batch, grid, dim, tile):
    torch.manual_seed(0)
    block = DemoBlock(dim, op, act, layer_scale=0.5)  # a layer scale that lets the branch matter
    x = (2 * torch.randn(batch, grid, grid, dim)).requires_grad_()
    grad = torch.randn(batch, grid, grid, dim)
    params = (x, *block.parameters())
    out = fused_demo_block(x, block.norm, block.dwconv, block.f, block.g, block.gamma, block_act_kernel_code(act),
                           block_op_kernel_code(op), tile)
    assert out is not None and out.shape == x.shape and out.is_contiguous()
    out.backward(grad)
    mine = grads(*params)
    ref = block(x)
    ref.backward(grad)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert_close_grads(mine, grads(*params))


def test_no_layer_scale_and_a_strided_input(fused, calls):
    """layer_scale=0 (no gamma), and the first block's input: the stem's NCHW map permuted (not contiguous)."""
    torch.manual_seed(0)
    block = accelerate(DemoBlock(16, "star", "gelu", layer_scale=0), fused_block=True)
    other = copy.deepcopy(block)
    x = torch.randn(3, 16, 7, 7).permute(0, 2, 3, 1).requires_grad_()
    out = block(x)
    out.square().sum().backward()
    mine = grads(x, *block.parameters())
    other(x).square().sum().backward()
    assert calls and block.gamma is None
    torch.testing.assert_close(out, other(x), rtol=1e-5, atol=1e-5)
    assert_close_grads(mine, grads(x, *other.parameters()))


def test_zoo_takes_its_own_build(fused, monkeypatch):
    """max, gate and silu run the second build; star and sum with the first build's activations the first, whose
    code is the one the committed runs were trained with."""
    used = []
    real = demo_block.extension
    monkeypatch.setattr(demo_block, "extension", lambda zoo=False: used.append(zoo) or real(zoo))
    x = torch.randn(2, 7, 7, 8)
    for op, act in (("star", "gelu"), ("sum", "relu"), ("max", "gelu"), ("gate", "none"), ("star", "silu")):
        used.clear()
        accelerate(DemoBlock(8, op, act), fused_block=True)(x).sum().backward()
        assert used and set(used) == {op in ("max", "gate") or act == "silu"}, (op, act)


def test_sigmoid_and_silu_equal_pytorch_over_their_range(fused):
    """The zoo build's sigmoid (gate's) and SiLU, from the polynomial exp: through blocks whose f passes h1 and h2
    straight to g."""
    values = torch.linspace(-30, 30, 1201)
    for op, act, ref_fn in (("gate", "none", lambda t: torch.sigmoid(t)), ("star", "silu", nn.functional.silu)):
        block = DemoBlock(1, op, act, layer_scale=1.0)
        with torch.no_grad():
            block.norm.weight.fill_(1.0), block.norm.bias.zero_()
            block.dwconv.weight.zero_(), block.dwconv.bias.zero_()
            block.f.weight.zero_(), block.f.bias.zero_(), block.g.weight.zero_(), block.g.bias.zero_()
            block.g.weight[0, 0] = 1.0
            block.f.bias[0], block.f.bias[3] = 1.0, 1.0  # h1[0] = 1 (gate), h2[0] = 1 (star): out = x + ref(v)
        x = torch.zeros(1, 1, 1, 1)
        index = 3 if op == "gate" else 0  # the input of the sigmoid (gate: h2) or of the SiLU (h1)
        for v in values.tolist():
            with torch.no_grad():
                block.f.bias[index] = v
            y = fused_demo_block(x, block.norm, block.dwconv, block.f, block.g, block.gamma,
                                 block_act_kernel_code(act), block_op_kernel_code(op))
            y.sum().backward()
            d = block.f.bias.grad[index].item()
            block.f.bias.grad = None
            t = torch.tensor(v, requires_grad=True)
            ref = ref_fn(t)
            ref.backward()
            assert abs(y.item() - ref.item()) <= 3e-7 * max(1.0, abs(v)), (op, v)
            assert abs(d - t.grad.item()) <= 1e-6, (op, v)


def test_gelu_equals_pytorch_over_its_range(fused):
    """The kernel's own GELU (A&S erf, polynomial exp): through a block whose f passes h1 straight to g."""
    block = DemoBlock(1, "sum", "gelu", layer_scale=1.0)
    with torch.no_grad():
        block.norm.weight.fill_(1.0), block.norm.bias.zero_()
        block.dwconv.weight.zero_(), block.dwconv.bias.zero_()
        block.f.weight.zero_(), block.f.bias.zero_(), block.g.weight.zero_(), block.g.bias.zero_()
        block.g.weight[0, 0] = 1.0  # out = x + gelu(h1[0]) with h1[0] = f.bias[0]
    values = torch.linspace(-12, 12, 2401)
    x = torch.zeros(1, 1, 1, 1)
    for v in values.tolist():
        with torch.no_grad():
            block.f.bias[0] = v
        b = block.f.bias
        y = fused_demo_block(x, block.norm, block.dwconv, block.f, block.g, block.gamma, block_act_kernel_code("gelu"),
                             op_kernel_code("sum"))
        y.sum().backward()
        d = b.grad[0].item()
        b.grad = None
        t = torch.tensor(v, requires_grad=True)
        ref = nn.functional.gelu(t)
        ref.backward()
        assert abs(y.item() - ref.item()) <= 3e-7 * max(1.0, abs(v)), v
        assert abs(d - t.grad.item()) <= 1e-6, v


def demonet_step(model, x, y):
    """One AdamW step: loss, gradients, and the parameters after it."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    loss = nn.functional.cross_entropy(model(x), y, label_smoothing=0.1)
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    opt.step()
    return loss.detach(), grads, [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("act,op", [(a, o) for a in ("gelu", "none") for o in ("star", "sum")]
                         + [("gelu", "max"), ("gelu", "gate"), ("silu", "star")])   # the zoo build's
@pytest.mark.parametrize("width,patch", [(16, 4), (8, 2)])
def test_training_step_equals_plain(fused, calls, act, op, width, patch):
    torch.manual_seed(0)
    model = DemoNet(width, 3, op=op, act=act, num_classes=10, in_chans=1, patch_size=patch, layer_scale=0.1).train()
    other = copy.deepcopy(model)
    accelerate(model, fused_block=True, fast_dwconv=True)
    x, y = torch.randn(6, 1, 28, 28), torch.randint(0, 10, (6,))
    loss, g, p = demonet_step(model, x, y)
    ref, g_ref, p_ref = demonet_step(other, x, y)
    assert len(calls) == 3  # every block took the kernel
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    scale = max(t.abs().max().item() for t in g_ref)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item() + 1e-6 * scale)
    for a, b in zip(p, p_ref):  # AdamW divides by sqrt(v): a gradient near 0 may move its step; lr bounds it
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    other.load_state_dict(model.state_dict())
    model.eval(), other.eval()
    with torch.no_grad():
        assert torch.equal(model(x), other(x))  # inference is PyTorch's


def test_falls_back_where_it_does_not_apply(fused, calls):
    register_op("diff_block_test")(lambda a, b: a - b)
    try:
        x = torch.randn(2, 7, 7, 8)
        for block in (DemoBlock(8, "diff_block_test"), DemoBlock(8, act="hardswish"), DemoBlock(8, drop_path=0.5)):
            accelerate(block, fused_block=True)(x).sum().backward()  # no code for the op/activation; drop path
        with torch.no_grad():
            accelerate(DemoBlock(8), fused_block=True)(x)             # inference
        DemoBlock(8)(x).sum().backward()                             # not accelerated
        assert not calls
        accelerate(DemoBlock(8), fused_block=True)(x).sum().backward()
        assert len(calls) == 1
        assert fused_demo_block(x.double(), *(lambda b: (b.norm, b.dwconv, b.f, b.g, b.gamma))(DemoBlock(8)),
                                block_act_kernel_code("gelu"), 0) is None  # float64
    finally:
        FUSION_OPS.pop("diff_block_test")


def test_without_a_compiler_the_block_runs_plain(monkeypatch):
    """A C++ kernel that cannot be built: one warning, then the plain block's exact values."""
    from starnet.kernels import _build
    monkeypatch.setattr(_build, "_built", {})
    monkeypatch.setattr(torch.utils.cpp_extension, "load_inline",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no compiler")))
    torch.manual_seed(0)
    model = DemoNet(8, 2, num_classes=10, in_chans=1, patch_size=4)
    other = copy.deepcopy(model)
    accelerate(model, fused_block=True)
    x = torch.randn(2, 1, 28, 28)
    with pytest.warns(RuntimeWarning, match="starbench_demo_block C\\+\\+ kernel unavailable"):
        out = model(x)
    assert torch.equal(out, other(x))


def test_default_run_takes_the_fused_block_and_resumes_exactly(tiny_cfg, tmp_path, calls, monkeypatch):
    """`run.py` with the default switches trains DemoNet through the kernel; a run killed after an epoch and
    resumed from its checkpoint (the fast path on) ends exactly where an uninterrupted one does;
    trainer.fast_paths=false never calls the kernel."""
    from experiments.entry import run_job  # 1 thread: threads=auto may pick another count per run when busy
    from experiments.train.trainer import Trainer
    straight = run_job(tiny_cfg("trainer.threads=1"), tmp_path / "straight")
    assert straight["status"] == "completed" and calls
    real_epoch = Trainer.train_epoch

    def crash_in_second_epoch(self):
        if self.epoch == 1:
            raise KeyboardInterrupt
        return real_epoch(self)

    monkeypatch.setattr(Trainer, "train_epoch", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_job(tiny_cfg("trainer.threads=1"), tmp_path / "resumed")
    monkeypatch.setattr(Trainer, "train_epoch", real_epoch)
    resumed = run_job(tiny_cfg("trainer.threads=1"), tmp_path / "resumed")
    assert [r["train_loss"] for r in resumed["history"]] == [r["train_loss"] for r in straight["history"]]
    assert resumed["top1"] == straight["top1"]
    del calls[:]
    assert run_job(tiny_cfg("trainer.fast_paths=false"), tmp_path / "plain")["status"] == "completed"
    assert not calls
