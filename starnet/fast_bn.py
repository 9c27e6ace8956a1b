"""Old import path of ``starnet.kernels.fast_bn``, kept for pickles: ultralytics detector checkpoints
saved before the move name ``starnet.fast_bn.BatchNorm2d`` (tests/starnet/test_pickles.py). New code
imports from ``starnet.kernels.fast_bn``."""
from .kernels.fast_bn import BatchNorm2d  # noqa: F401
