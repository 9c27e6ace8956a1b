"""The layers both models share (starnet/layers.py): TorchScript and the meta device."""
import torch

from starnet.layers import ConvBN, DropPath, drop_path_rates


def test_drop_path_scripts_and_draws_the_same_mask():
    drop = DropPath(0.5).train()
    scripted = torch.jit.script(drop)
    x = torch.randn(16, 3, 4, 4)
    torch.manual_seed(0)
    eager = drop(x)
    torch.manual_seed(0)
    assert torch.equal(scripted(x), eager) and (eager == 0).any()
    assert torch.equal(scripted.eval()(x), x)


def test_drop_path_rates_are_numbers_under_a_meta_device_context():
    """timm's create_model(device="meta") builds under ``with torch.device("meta")``: the schedule is the CPU's."""
    with torch.device("meta"):
        rates = drop_path_rates(0.3, 4)
    assert rates == drop_path_rates(0.3, 4) and rates[0] == 0.0 and abs(rates[-1] - 0.3) < 1e-7


def test_conv_bn_is_made_on_the_device_and_dtype_asked_for():
    for with_bn in (True, False):
        for groups in (1, 4):  # a plain conv, and a depthwise one (kernel-aware DepthwiseConv2d)
            layer = ConvBN(4, 4, 7, 1, 3, groups=groups, with_bn=with_bn, device="meta", dtype=torch.float64)
            tensors = [*layer.parameters(), *[b for b in layer.buffers() if b.is_floating_point()]]
            assert all(t.device.type == "meta" and t.dtype == torch.float64 for t in tensors)
