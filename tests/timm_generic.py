"""timm's generic model tests (tests/test_models.py of huggingface/pytorch-image-models), as functions that
tests/starnet/test_timm.py and tests/demonet/test_timm.py run on every registered starbench model.

Each takes the model name and the keyword arguments of a small config; nothing downloads (pretrained=False). The
suite itself runs from the sdist of the installed timm (which needs the network to download):
    pip download --no-deps --no-binary :all: timm==<version>; unpack; cd timm-<version>
    printf 'import starnet, demonet\\n' > tests/conftest.py
    PYTHONPATH=<starbench> python -m pytest -q tests/test_models.py -k "starbench_ and not pretrained"
"""
import fnmatch
import inspect
import math

import pytest
import timm
import torch
from timm.models import create_feature_extractor, get_graph_node_names
from timm.models._manipulate import group_parameters

BATCH = 2


def _inputs(model, size=None):
    c, h, w = model.pretrained_cfg["input_size"]
    if size is not None:
        h = w = size
    return torch.randn(BATCH, c, h, w)


def check_forward(name, kwargs, size=64):
    model = timm.create_model(name, pretrained=False, **kwargs).eval()
    with torch.no_grad():
        out = model(_inputs(model, size))
    assert out.shape == (BATCH, model.num_classes)
    assert not torch.isnan(out).any()


def check_backward(name, kwargs, size=64):
    model = timm.create_model(name, pretrained=False, num_classes=42, **kwargs).train()
    num_params = sum(p.numel() for p in model.parameters())
    out = model(_inputs(model, size))
    out.mean().backward()
    for n, p in model.named_parameters():
        assert p.grad is not None, f"no gradient for {n}"
    assert sum(p.grad.numel() for p in model.parameters()) == num_params
    assert out.shape[-1] == 42
    assert not torch.isnan(out).any()


def check_default_cfg(name, kwargs):
    model = timm.create_model(name, pretrained=False, **kwargs).eval()
    assert model.num_classes >= 0 and model.num_features > 0 and model.head_hidden_size > 0
    assert model.default_cfg is model.pretrained_cfg
    state_dict = model.state_dict()
    cfg = model.pretrained_cfg
    pool_size = cfg["pool_size"]
    x = _inputs(model)  # the config's input size
    with torch.no_grad():
        feats = model.forward_features(x)  # always unpooled
        pre = model.forward_head(feats, pre_logits=True)
        assert feats.shape[-2:] == pool_size, "unpooled feature shape != config"
        assert feats.shape[1] == model.num_features, "unpooled feature dim != model.num_features"
        assert pre.shape[1] == model.head_hidden_size, "pre_logits feature dim != model.head_hidden_size"

        model.reset_classifier(0)  # no classifier: pooled features
        out = model(x)
        assert out.ndim == 2 and out.shape[1] == model.num_features == model.head_hidden_size
        assert out.shape == pre.shape
        assert torch.allclose(out, pre)

        model.reset_classifier(0, "")  # no classifier, no pooling: the map
        out = model(x)
        assert out.ndim == 4 and out.shape[-2:] == pool_size and out.shape[1] == model.num_features

    for key in ("classifier", "first_conv"):
        names = cfg[key] if isinstance(cfg[key], (tuple, list)) else (cfg[key],)
        for n in names:
            assert n + ".weight" in state_dict, f"{key} {n} not in the state dict"


def check_features_only(name, kwargs, size=64):
    model = timm.create_model(name, pretrained=False, features_only=True, **kwargs).eval()
    channels, reductions = model.feature_info.channels(), model.feature_info.reduction()
    assert len(channels) >= 3
    with torch.no_grad():
        outs = model(_inputs(model, size))
    assert len(outs) == len(channels)
    for c, r, o in zip(channels, reductions, outs):
        assert o.shape[1] == c
        assert o.shape[2] <= math.ceil(size / r) + 1 and o.shape[3] <= math.ceil(size / r) + 1
        assert o.shape[0] == BATCH and not torch.isnan(o).any()


def check_forward_intermediates(name, kwargs, size=64):
    model = timm.create_model(name, pretrained=False, **kwargs).eval()
    channels = [info["num_chs"] for info in model.feature_info]
    reductions = [info["reduction"] for info in model.feature_info]
    x = _inputs(model, size)
    with torch.no_grad():
        out, inter = model.forward_intermediates(x)
        assert len(inter) == len(channels)
        for c, r, o in zip(channels, reductions, inter):
            assert o.shape[1] == c
            assert o.shape[2] <= math.ceil(size / r) + 1 and o.shape[3] <= math.ceil(size / r) + 1
            assert o.shape[0] == BATCH and not torch.isnan(o).any()
        assert torch.allclose(out, model.forward_features(x))
        last2 = model.forward_intermediates(x, indices=2, intermediates_only=True)
        assert len(last2) == 2 and all(torch.equal(a, b) for a, b in zip(last2, inter[-2:]))
        early = model.forward_intermediates(x, indices=[0], stop_early=True, intermediates_only=True)
        assert torch.equal(early[0], inter[0])


def _fx_model(model):
    """The model traced by torch.fx through timm's create_feature_extractor, returning its last node."""
    train_nodes, eval_nodes = get_graph_node_names(model)
    return create_feature_extractor(model, return_nodes=[(eval_nodes if not model.training else train_nodes)[-1]])


def check_fx(name, kwargs, size=64):
    """timm's test_model_forward_fx / test_model_backward_fx: the fx-traced model gives the model's outputs
    and gradients to every parameter."""
    model = timm.create_model(name, pretrained=False, **kwargs).eval()
    x = _inputs(model, size)
    fx = _fx_model(model).eval()
    with torch.no_grad():
        assert torch.allclose(list(fx(x).values())[0], model(x))
    model = timm.create_model(name, pretrained=False, num_classes=42, **kwargs).train()
    fx = _fx_model(model).train()
    out = list(fx(x).values())[0]
    out.mean().backward()
    assert out.shape[-1] == 42
    assert all(p.grad is not None for p in fx.parameters())


def check_meta_default_cfg(name, kwargs):
    """timm's test_model_default_cfgs as its CI runs it (torch with device contexts): the model built with
    ``device="meta", dtype=torch.float32``, forwarded at the config's input size without allocating, and
    timm's device/dtype contract: every parameter and buffer where create_model put it, a dtype change after a
    forward, reset_classifier on the parent's device and dtype, frozen parameters staying frozen."""
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False, device="meta", dtype=torch.float32, **kwargs).eval()
        with pytest.raises(TypeError):  # an unknown constructor argument is an error, not ignored
            timm.create_model(name, pretrained=False, device="meta", not_a_model_arg=1, **kwargs)
    assert inspect.signature(model.reset_classifier).parameters["global_pool"].default is None
    param_names = [n for n, _ in model.named_parameters()]
    assert len(set(group_parameters(model, model.group_matcher(coarse=False), reverse=True).values())) > 1
    assert all(any(fnmatch.fnmatch(n, p) for n in param_names) for p in model.no_weight_decay())
    cfg = model.pretrained_cfg
    assert model.in_chans == cfg["input_size"][0]
    pool_size = cfg["pool_size"]
    x = torch.randn(1, *cfg["input_size"], device="meta")
    feats = model.forward_features(x)
    pre = model.forward_head(feats, pre_logits=True)
    assert feats.shape[-2:] == pool_size and feats.shape[1] == model.num_features
    assert pre.shape[1] == model.head_hidden_size
    model.to(torch.bfloat16)  # a dtype change after a forward: nothing cached in the old dtype
    assert model(x.to(torch.bfloat16)).dtype == torch.bfloat16
    model.to(torch.float32)
    model.reset_classifier(0)
    assert model.num_classes == 0 and model(x).shape == pre.shape
    model.reset_classifier(0, "")
    out = model(x)
    assert out.ndim == 4 and out.shape[-2:] == pool_size
    # the same through the constructor, and without the device context
    model = timm.create_model(name, pretrained=False, num_classes=0, device="meta", dtype=torch.float32, **kwargs)
    assert model.eval()(x).shape == pre.shape
    model = timm.create_model(name, pretrained=False, num_classes=0, global_pool="", device="meta",
                              dtype=torch.float32, **kwargs).eval()
    assert model(x).shape[-2:] == pool_size

    model.to(device="meta", dtype=torch.float64)  # reset_classifier: the new head where the model is
    model.reset_classifier(0)
    model.reset_classifier(2)
    assert all(p.device.type == "meta" and p.dtype == torch.float64 for p in model.get_classifier().parameters())
    assert all(m.training == model.training for m in model.modules())

    model = timm.create_model(name, pretrained=False, device="meta", dtype=torch.float32, **kwargs)
    assert all(t.device.type == "meta" for t in [*model.parameters(), *model.buffers()])
    model.requires_grad_(False)
    model.reset_classifier(0)
    model.reset_classifier(0, "")
    assert not [n for n, p in model.named_parameters() if p.requires_grad]


def check_torchscript(name, kwargs, size=64):
    """timm's test_model_forward_torchscript: the model scripts (``torch.jit.script``) and gives the eager model's
    outputs."""
    with timm.set_scriptable(True):
        model = timm.create_model(name, pretrained=False, **kwargs).eval()
    _assert_scripted_equals(torch.jit.script(model), model, _inputs(model, size))


def check_fx_torchscript(name, kwargs, size=64):
    """timm's test_model_forward_fx_torchscript: the fx-traced model scripts and gives the eager model's outputs."""
    with timm.set_scriptable(True):
        model = timm.create_model(name, pretrained=False, **kwargs).eval()
    scripted = torch.jit.script(_fx_model(model))
    _assert_scripted_equals(lambda x: list(scripted(x).values())[0], model, _inputs(model, size))


def _assert_scripted_equals(scripted, model, x):
    # optimized_execution(False): the profiling executor's passes take seconds a model and change nothing here
    with torch.no_grad(), torch.jit.optimized_execution(False):
        out = scripted(x)
        assert out.shape[0] == x.shape[0] and not torch.isnan(out).any()
        torch.testing.assert_close(out, model(x))
