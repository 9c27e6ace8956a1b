"""Modules pickled under their paths before the layout change (ultralytics detector checkpoints hold the
whole module tree) still unpickle: ``starnet.dwconv`` and ``starnet.fast_bn`` are kept as aliases."""
import io

import pytest
import torch

from starnet import create_starnet
from starnet.kernels.dwconv import DepthwiseConv2d
from starnet.kernels.fast_bn import BatchNorm2d
from starnet.layers import ConvBN, DropPath
from starnet.model import StarBlock, StarNet, Stem
from starnet.ops import Fusion

OLD_PATHS = {DepthwiseConv2d: "starnet.dwconv", BatchNorm2d: "starnet.fast_bn"}
# Where the other classes a detector checkpoint names lived before, and still live.
UNMOVED = {StarNet: "starnet.model", StarBlock: "starnet.model", Stem: "starnet.model", ConvBN: "starnet.layers",
           DropPath: "starnet.layers", Fusion: "starnet.ops"}


def saved_under_old_paths(obj, monkeypatch) -> bytes:
    """``torch.save(obj)`` as the code before the move wrote it: the moved classes named by their old modules."""
    with monkeypatch.context() as m:
        for cls, module in OLD_PATHS.items():
            m.setattr(cls, "__module__", module)
        buffer = io.BytesIO()
        torch.save(obj, buffer)
    return buffer.getvalue()


def test_unmoved_classes_keep_their_paths():
    assert all(cls.__module__ == module for cls, module in UNMOVED.items())


def test_a_model_pickled_under_the_old_paths_still_loads(monkeypatch):
    torch.manual_seed(0)
    model = create_starnet("s050", num_classes=10, drop_path=0.1).eval()
    data = saved_under_old_paths(model, monkeypatch)
    for cls, module in OLD_PATHS.items():  # the pickle's GLOBAL opcode: module and name, one line each
        assert f"c{module}\n{cls.__name__}\n".encode() in data
        assert f"{cls.__module__}\n{cls.__name__}".encode() not in data
    loaded = torch.load(io.BytesIO(data), weights_only=False)
    assert type(loaded.stages[0][1].dwconv.conv) is DepthwiseConv2d and type(loaded.norm) is BatchNorm2d
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_modules_unpickled_from_before_accelerate_run_plain(monkeypatch):
    """Pickles from before ``accelerate`` existed have no ``kernels`` attribute: the class default applies."""
    from starnet import accelerate
    model = create_starnet("s050", num_classes=10)
    for m in model.modules():
        assert "kernels" not in vars(m)  # what a pickle holds is the instance dict
    loaded = torch.load(io.BytesIO(saved_under_old_paths(model, monkeypatch)), weights_only=False)
    accelerate(loaded, fast_dwconv=True)  # and they take the options like any module
    assert loaded.stages[0][1].dwconv.conv.kernels.fast_dwconv


@pytest.mark.parametrize("path,name", [("starnet.dwconv", "DepthwiseConv2d"), ("starnet.fast_bn", "BatchNorm2d")])
def test_old_paths_import(path, name):
    import importlib
    assert getattr(importlib.import_module(path), name) in OLD_PATHS
