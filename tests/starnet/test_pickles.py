"""Whole-module pickles (``torch.save(model)``; ultralytics detector checkpoints hold the module tree) name each
class by its module: the classes they name stay where they are, and modules pickled before a later attribute
existed still load and run."""
import io

import torch

from starnet import create_starnet
from starnet.kernels.dwconv import DepthwiseConv2d
from starnet.kernels.fast_bn import BatchNorm2d
from starnet.layers import ConvBN, DropPath
from starnet.model import StarBlock, StarNet, Stem
from starnet.ops import Fusion

# Where the classes a checkpoint names live (a move breaks every pickle that names the old path).
PATHS = {StarNet: "starnet.model", StarBlock: "starnet.model", Stem: "starnet.model", ConvBN: "starnet.layers",
         DropPath: "starnet.layers", Fusion: "starnet.ops", DepthwiseConv2d: "starnet.kernels.dwconv",
         BatchNorm2d: "starnet.kernels.fast_bn"}


def test_pickled_classes_keep_their_paths():
    assert all(cls.__module__ == module for cls, module in PATHS.items())


def test_modules_unpickled_from_before_accelerate_run_plain():
    """Pickles from before ``accelerate`` existed have no ``kernels`` attribute: the class default applies."""
    from starnet import accelerate
    model = create_starnet("s050", num_classes=10)
    for m in model.modules():
        assert "kernels" not in vars(m)  # what a pickle holds is the instance dict
    buffer = io.BytesIO()
    torch.save(model, buffer)
    loaded = torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)
    accelerate(loaded, fast_dwconv=True)  # and they take the options like any module
    assert loaded.stages[0][1].dwconv.conv.kernels.fast_dwconv
