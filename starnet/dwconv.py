"""Old import path of ``starnet.kernels.dwconv``, kept for pickles: ultralytics detector checkpoints
saved before the move name ``starnet.dwconv.DepthwiseConv2d`` (tests/starnet/test_pickles.py). New code
imports from ``starnet.kernels.dwconv``."""
from .kernels.dwconv import DepthwiseConv2d, depthwise  # noqa: F401
