"""The opt-in CPU kernels (the lowest layer: imports torch only, knows no model) and ``accelerate``.

``csrc/`` holds the C++ (``activations.h``, shared, and one ``.cpp`` per kernel); ``_build.py`` compiles it (or says
once why it cannot; ``said_while_slow``: what a long build, or the trainer's first step, says while it runs);
``dwconv.py``, ``fused_mlp.py``, ``fast_bn.py`` and ``demo_block.py`` are the kernels with their autograd functions
and kernel-aware modules; ``accelerate.py`` declares the kernel switches (``KernelOptions``) and switches them on for
one model (exported as ``starnet.accelerate``). Kernels take integer codes for ops and activations: ``codes.py`` is
the table of them, which ``starnet.ops`` reads.
"""

from ._build import said_while_slow

__all__ = ["said_while_slow"]
