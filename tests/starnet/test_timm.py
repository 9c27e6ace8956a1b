"""StarNet as timm models (starnet/timm_models.py): timm's generic model tests (tests/timm_generic.py) on every
registered variant and both ops, pretrained weights from a local file, and the starbench API on timm-built models."""
import copy

import pytest
import timm
import torch

import starnet
from starnet import VARIANTS, accelerate, create_starnet
from starnet.timm_models import MODEL_NAMES
from tests import timm_generic as generic

# Full variants where cheap; the larger ones at a small width/depth (the same registered builder).
SMALL = {"s050": {}, "s100": {}, "s150": {}, "s1": dict(width=8, depths=[1, 1, 2, 1]),
         "s2": dict(width=8, depths=[1, 1, 1, 1]), "s3": dict(width=8, depths=[1, 1, 1, 1]),
         "s4": dict(width=8, depths=[1, 1, 1, 1])}
CASES = [(f"starbench_starnet_{v}", op, kw) for v, kw in SMALL.items() for op in ("star", "sum")]
IDS = [f"{name}-{op}" for name, op, _ in CASES]


def test_every_variant_is_registered():
    assert set(SMALL) == set(VARIANTS)
    names = {f"starbench_starnet_{v}" for v in VARIANTS}
    assert set(timm.list_models("starbench_starnet_*")) == set(MODEL_NAMES) == names
    assert not set(MODEL_NAMES) & set(timm.list_models("starnet_*"))  # no clash with timm's own


@pytest.mark.parametrize("name,op,kw", CASES, ids=IDS)
def test_forward(name, op, kw):
    generic.check_forward(name, dict(kw, op=op))


@pytest.mark.parametrize("name,op,kw", CASES, ids=IDS)
def test_backward(name, op, kw):
    generic.check_backward(name, dict(kw, op=op))


@pytest.mark.parametrize("name,op,kw", CASES, ids=IDS)
def test_default_cfg(name, op, kw):
    generic.check_default_cfg(name, dict(kw, op=op))


@pytest.mark.parametrize("name,op,kw", CASES, ids=IDS)
def test_features_only(name, op, kw):
    generic.check_features_only(name, dict(kw, op=op))


@pytest.mark.parametrize("name,op,kw", CASES, ids=IDS)
def test_forward_intermediates(name, op, kw):
    generic.check_forward_intermediates(name, dict(kw, op=op))


@pytest.mark.parametrize("op", ["star", "sum"])
def test_fx(op):
    generic.check_fx("starbench_starnet_s050", dict(op=op))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_meta_default_cfg(name):
    """On the meta device the full registered variant costs nothing: timm's own config test, unshrunk."""
    generic.check_meta_default_cfg(name, {})


@pytest.mark.parametrize("op", ["sum", ["sum", "max", "gate", "concat"]], ids=["sum", "zoo"])
def test_meta_default_cfg_other_ops(op):
    generic.check_meta_default_cfg("starbench_starnet_s1", dict(op=op))


@pytest.mark.parametrize("name,kw", [(f"starbench_starnet_{v}", kw) for v, kw in SMALL.items()],
                         ids=list(SMALL))
def test_torchscript(name, kw):
    generic.check_torchscript(name, kw, size=32)


@pytest.mark.parametrize("op", ["sum", ["star", "max", "gate", "concat"], "swiglu"], ids=["sum", "zoo", "swiglu"])
def test_torchscript_other_ops(op):
    generic.check_torchscript("starbench_starnet_s050", dict(op=op, drop_path_rate=0.1), size=32)


@pytest.mark.parametrize("op", ["star", "sum"])
def test_fx_torchscript(op):
    generic.check_fx_torchscript("starbench_starnet_s050", dict(op=op))


@pytest.mark.parametrize("kwargs", [dict(device="meta"), dict(dtype=torch.bfloat16),
                                    dict(device="meta", dtype=torch.float16)], ids=["meta", "bf16", "meta-fp16"])
def test_device_and_dtype_as_timms_starnet(kwargs):
    """``device=``/``dtype=`` place every tensor as timm's own starnet_s1 does (same keys, devices, dtypes)."""
    ours = timm.create_model("starbench_starnet_s1", **kwargs).state_dict()
    theirs = timm.create_model("starnet_s1", **kwargs).state_dict()
    assert ours.keys() == theirs.keys()
    assert all((t.device, t.dtype, t.shape) == (theirs[k].device, theirs[k].dtype, theirs[k].shape)
               for k, t in ours.items())


def test_a_bfloat16_model_runs_in_bfloat16():
    model = timm.create_model("starbench_starnet_s050", dtype=torch.bfloat16, num_classes=10, width=8).train()
    out = model(torch.randn(2, 3, 32, 32, dtype=torch.bfloat16))
    out.float().sum().backward()
    assert out.dtype == torch.bfloat16 and all(p.grad.dtype == torch.bfloat16 for p in model.parameters())


def test_device_and_dtype_defaults_build_the_same_model():
    """Passing the defaults explicitly draws the same initial weights (the training runs' models)."""
    torch.manual_seed(0)
    a = create_starnet("s050", op="sum", drop_path=0.1)
    torch.manual_seed(0)
    b = create_starnet("s050", op="sum", drop_path=0.1, device="cpu", dtype=torch.float32)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_pretrained_cfgs():
    assert timm.create_model("starbench_starnet_s1").pretrained_cfg["hf_hub_id"] == "timm/starnet_s1.in1k"
    assert timm.create_model("starbench_starnet_s050").pretrained_cfg["tag"] == "untrained"
    with pytest.raises(ValueError, match="op='star' only"):
        timm.create_model("starbench_starnet_s1", pretrained=True, op="sum")


def test_pretrained_from_local_file_equals_timm(tmp_path):
    torch.manual_seed(0)
    ref = timm.create_model("starnet_s1").eval()  # timm's own, randomly initialised
    path = tmp_path / "starnet_s1.pth"
    torch.save(ref.state_dict(), path)
    model = timm.create_model("starbench_starnet_s1", pretrained=True,
                              pretrained_cfg_overlay=dict(file=str(path))).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), ref(x))
        ref_feats = timm.create_model("starnet_s1", features_only=True, pretrained=True,
                                      pretrained_cfg_overlay=dict(file=str(path))).eval()(x)
        feats = timm.create_model("starbench_starnet_s1", features_only=True, pretrained=True,
                                  pretrained_cfg_overlay=dict(file=str(path))).eval()(x)
        assert all(torch.equal(a, b) for a, b in zip(feats, ref_feats))
    # a new head on the pretrained body (timm drops the 1000-class classifier)
    ten = timm.create_model("starbench_starnet_s1", pretrained=True, num_classes=10,
                            pretrained_cfg_overlay=dict(file=str(path)))
    assert ten.head.out_features == 10 and torch.equal(ten.stem[0].conv.weight, ref.stem[0].conv.weight)


@pytest.mark.parametrize("op", ["star", ["sum", "sum", "star", "star"]])
def test_same_model_as_create_starnet(op):
    torch.manual_seed(5)
    a = create_starnet("s050", op=op, act="gelu", num_classes=7, in_chans=1, drop_path=0.1, width=8, init="timm")
    torch.manual_seed(5)
    b = timm.create_model("starbench_starnet_s050", op=op, act="gelu", num_classes=7, in_chans=1, drop_path_rate=0.1,
                          width=8, init="timm")
    assert type(a) is type(b) and a.ops == b.ops and b.feature_info == a.feature_info
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_starbench_api_on_timm_models():
    model = timm.create_model("starbench_starnet_s050", op="sum").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        inter = model.forward_intermediates(x, indices=(1, 2, 3), intermediates_only=True)
        assert [f.shape[1] for f in inter] == [info["num_chs"] for info in model.feature_info[1:]] == [32, 64, 128]
        y = model(x)
        deploy = starnet.reparameterize(copy.deepcopy(model))
        assert torch.allclose(deploy(x), y, atol=1e-4)


def test_accelerate_on_timm_models(require_kernel):
    """starnet.accelerate's kernel paths on a model built by timm.create_model (and on its features_only wrapper)."""
    from starnet.kernels.fused_mlp import extension
    require_kernel(extension, "fused MLP")
    torch.manual_seed(0)
    model = timm.create_model("starbench_starnet_s050", op="sum", num_classes=10).train()
    model = model.to(memory_format=torch.channels_last)
    plain = copy.deepcopy(model)
    accelerate(model, fused_mlp=True, fast_batchnorm=True)
    assert all(b.kernels.fused_mlp for b in model.modules() if isinstance(b, starnet.StarBlock))
    x = torch.randn(4, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(model(x), plain(x), rtol=1e-4, atol=1e-4)
    feats = accelerate(timm.create_model("starbench_starnet_s050", features_only=True), fused_mlp=True)
    assert all(b.kernels.fused_mlp for b in feats.modules() if isinstance(b, starnet.StarBlock))


@pytest.mark.parametrize("deployed", [False, True])  # True: saved after reparameterize (stages open with a Conv2d)
def test_model_pickled_before_the_timm_api_still_runs(deployed):
    import pickle
    model = create_starnet("s050", num_classes=3).eval()
    if deployed:
        model.reparameterize()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        y = model(x)
    del model._modules["global_pool"]  # as a model saved with torch.save(model) before the timm API
    for key in ("drop_rate", "head_hidden_size", "feature_info"):
        del model.__dict__[key]
    old = pickle.loads(pickle.dumps(model))
    with torch.no_grad():
        assert torch.equal(old(x), y)
    assert old.feature_info == timm.create_model("starbench_starnet_s050").feature_info
