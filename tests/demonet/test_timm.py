"""DemoNet as a timm model (demonet/timm_models.py): timm's generic model tests (tests/timm_generic.py) at a small
width and both ops, and the same model as ``DemoNet(...)``."""
import copy

import pytest
import timm
import torch

from demonet import DemoNet
from demonet.timm_models import MODEL_NAMES
from starnet import accelerate, reparameterize
from tests import timm_generic as generic

NAME = "starbench_demonet"
SMALL = dict(width=16, depth=3)  # depth 3: features_only gives the last 3 blocks
OPS = ["star", "sum"]


def test_registered():
    assert timm.list_models("starbench_demonet*") == list(MODEL_NAMES) == [NAME]


@pytest.mark.parametrize("op", OPS)
def test_forward(op):
    generic.check_forward(NAME, dict(SMALL, op=op))


@pytest.mark.parametrize("op", OPS)
def test_backward(op):
    generic.check_backward(NAME, dict(SMALL, op=op))


@pytest.mark.parametrize("op", OPS)
def test_default_cfg(op):
    generic.check_default_cfg(NAME, dict(SMALL, op=op))


@pytest.mark.parametrize("op", OPS)
def test_features_only(op):
    generic.check_features_only(NAME, dict(SMALL, op=op))


@pytest.mark.parametrize("op", OPS)
def test_forward_intermediates(op):
    generic.check_forward_intermediates(NAME, dict(SMALL, op=op))


@pytest.mark.parametrize("op", OPS)
def test_fx(op):
    generic.check_fx(NAME, dict(SMALL, op=op))


def test_meta_default_cfg():
    """On the meta device the full default DemoNet costs nothing: timm's own config test, unshrunk."""
    generic.check_meta_default_cfg(NAME, {})


@pytest.mark.parametrize("op", OPS + ["concat"])
def test_torchscript(op):
    generic.check_torchscript(NAME, dict(SMALL, op=op, drop_path_rate=0.1))


def test_fx_torchscript():
    generic.check_fx_torchscript(NAME, SMALL)


@pytest.mark.parametrize("kwargs", [dict(device="meta"), dict(dtype=torch.bfloat16)], ids=["meta", "bf16"])
def test_device_and_dtype(kwargs):
    model = timm.create_model(NAME, **SMALL, **kwargs)
    device, dtype = torch.device(kwargs.get("device", "cpu")), kwargs.get("dtype", torch.float32)
    assert all(p.device == device and p.dtype == dtype for p in model.parameters())
    if device.type == "cpu":
        assert model(torch.randn(2, 3, 32, 32, dtype=dtype)).dtype == dtype


def test_no_pretrained_weights():
    assert not timm.create_model(NAME, **SMALL).pretrained_cfg.get("hf_hub_id")


def test_head_pre_logits_and_unpooled_map():
    model = timm.create_model(NAME, width=16, depth=2, num_classes=5, in_chans=1, patch_size=4).eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 16, 7, 7)
        pre = model.forward_head(feats, pre_logits=True)  # pooled, then the LayerNorm
        assert torch.allclose(pre, model.norm(feats.mean((2, 3))))
        assert torch.allclose(model(x), model.head(pre))
        model.reset_classifier(0, "")
        assert torch.allclose(model(x), model.norm(feats.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))


@pytest.mark.parametrize("op", OPS)
def test_same_model_as_demonet(op):
    args = dict(width=16, depth=2, op=op, act="none", num_classes=7, in_chans=1, patch_size=4, layer_scale=0.5)
    torch.manual_seed(5)
    a = DemoNet(drop_path=0.1, **args)
    torch.manual_seed(5)
    b = timm.create_model(NAME, drop_path_rate=0.1, **args)
    assert type(a) is type(b) and repr(a) == repr(b)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_accelerate_and_reparameterize_on_timm_models():
    from starnet.kernels.dwconv import extension
    if extension() is None:  # as tests/starnet/conftest.py's require_kernel
        pytest.fail("the depthwise kernel did not build (a C++ compiler is required where tests run)")
    torch.manual_seed(0)
    model = timm.create_model(NAME, width=16, depth=2, op="sum", num_classes=10).train()
    plain = copy.deepcopy(model)
    accelerate(model, fast_dwconv=True)
    x = torch.randn(2, 3, 64, 64)
    model(x).sum().backward()
    plain(x).sum().backward()
    for (n, p), q in zip(model.named_parameters(), plain.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5, msg=n)
    with torch.no_grad():
        plain.eval()
        torch.testing.assert_close(reparameterize(copy.deepcopy(plain))(x), plain(x), rtol=1e-4, atol=1e-4)


def test_model_pickled_before_the_timm_api_still_runs():
    import pickle
    model = DemoNet(width=8, depth=2, num_classes=3).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        y = model(x)
    del model._modules["global_pool"]  # as a model saved with torch.save(model) before the timm API
    for key in ("drop_rate", "head_hidden_size", "feature_info"):
        del model.__dict__[key]
    old = pickle.loads(pickle.dumps(model))
    with torch.no_grad():
        assert torch.equal(old(x), y)
    assert old.feature_info == timm.create_model(NAME, width=8, depth=2).feature_info
