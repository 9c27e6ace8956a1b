"""Detector checkpoints written before the task moved (they pickle the whole model under the old module paths)
still load: ``experiments.detect.model`` is kept for their backbone's name. The kernels' old paths
(``starnet.dwconv``, ``starnet.fast_bn``) have no module any more; torch's ``weights_only`` loading
(``ULTRALYTICS_SAFE_LOAD=1``) still maps them, since ``allow_safe_load`` lists every old name."""
import importlib
import importlib.machinery
import importlib.util
import io
import sys
import types

import pytest

pytest.importorskip("ultralytics")

import torch  # noqa: E402

from experiments.tasks.detect import model as new  # noqa: E402
from starnet.kernels.dwconv import DepthwiseConv2d  # noqa: E402
from starnet.kernels.fast_bn import BatchNorm2d  # noqa: E402

TASK_PATH = {new.StarNetBackbone: "experiments.detect.model"}
KERNEL_PATHS = {DepthwiseConv2d: "starnet.dwconv", BatchNorm2d: "starnet.fast_bn"}


def _pickled_under(obj, old_paths) -> bytes:
    """``obj`` saved as a checkpoint written before the move: the moved classes named by their old modules."""
    moved = {cls: cls.__module__ for cls in old_paths}
    # pickle writes a class only under a path it can import back: an old path with no module left gets a stand-in
    # module for the duration of the save, so the bytes are the ones an old checkpoint holds
    stand_ins = {module: types.ModuleType(module) for module in old_paths.values() if _missing(module)}
    try:
        for cls, module in old_paths.items():
            cls.__module__ = module
            if module in stand_ins:
                setattr(stand_ins[module], cls.__name__, cls)
        sys.modules.update(stand_ins)
        buf = io.BytesIO()
        torch.save({"model": obj}, buf)
    finally:
        for module in stand_ins:
            del sys.modules[module]
        for cls, module in moved.items():
            cls.__module__ = module
    data = buf.getvalue()
    for cls, module in old_paths.items():  # the pickle's GLOBAL opcode: module and name, one line each
        assert f"c{module}\n{cls.__name__}\n".encode() in data and f"{moved[cls]}\n".encode() not in data
    return data


def _missing(module: str) -> bool:
    """No module of that name to import (a path that moved)."""
    try:
        return importlib.util.find_spec(module) is None
    except ImportError:
        return True


def _load(data: bytes, backbone, weights_only: bool):
    # torch's own module classes are allowed by ultralytics when it loads; ours (under both paths) on import.
    torch_classes = {type(m) for m in backbone.modules() if not type(m).__module__.startswith(("experiments", "starnet"))}
    with torch.serialization.safe_globals(sorted(torch_classes, key=str)):
        return torch.load(io.BytesIO(data), weights_only=weights_only)["model"]


@pytest.mark.parametrize("weights_only", [False, True])  # True: ULTRALYTICS_SAFE_LOAD=1's torch loading
def test_backbone_pickled_under_the_old_task_path_loads(weights_only):
    backbone = new.StarNetBackbone("s050", "sum").eval()
    loaded = _load(_pickled_under(backbone, TASK_PATH), backbone, weights_only)
    assert type(loaded) is new.StarNetBackbone and loaded.op == "sum"
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(loaded(x), backbone(x)))
    resaved = io.BytesIO()
    torch.save({"model": loaded}, resaved)  # the conversion the shim's docstring gives: then no old name is left
    assert b"experiments.detect.model" not in resaved.getvalue()


def test_old_kernel_paths_load_only_by_name():
    backbone = new.StarNetBackbone("s050", "star").eval()
    data = _pickled_under(backbone, {**TASK_PATH, **KERNEL_PATHS})
    loaded = _load(data, backbone, weights_only=True)
    assert type(loaded.body.stages[0][1].dwconv.conv) is DepthwiseConv2d
    assert type(loaded.body.stages[0][1].dwconv.bn) is BatchNorm2d
    import starnet
    for module in KERNEL_PATHS.values():  # no module left to import under the old name
        assert importlib.machinery.PathFinder.find_spec(module.rpartition(".")[2], starnet.__path__) is None


def test_the_old_module_holds_the_pickled_name_only():
    """No code may use the old path: it offers the one class a checkpoint names, the class ultralytics knows."""
    import ultralytics.nn.tasks as yolo_tasks
    old = importlib.import_module("experiments.detect.model")
    assert old.StarNetBackbone is new.StarNetBackbone is yolo_tasks.StarNetBackbone
    assert {k for k in vars(old) if not k.startswith("__")} == {"StarNetBackbone"}
    assert {k for k in vars(importlib.import_module("experiments.detect")) if not k.startswith("__")} == {"model"}
