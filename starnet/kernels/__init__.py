"""The opt-in CPU kernels (the lowest layer: imports torch only, knows no model) and ``accelerate``.

``_build.py`` compiles the C++ (or says once why it cannot; ``said_while_slow``: what a long build, or the trainer's
first step, says while it runs); ``dwconv.py``, ``fused_mlp.py`` and
``fast_bn.py`` are the kernels with their autograd functions and kernel-aware modules;
``accelerate.py`` switches them on for one model (exported as ``starnet.accelerate``). Kernels take
integer codes for ops and activations; ``starnet.ops`` maps names to codes.
"""

from ._build import said_while_slow

__all__ = ["said_while_slow"]
