"""The opt-in CPU kernels (the lowest layer: imports torch only, knows no model) and ``accelerate``.

``_build.py`` compiles the C++ (or says once why it cannot); ``dwconv.py``, ``fused_mlp.py`` and
``fast_bn.py`` are the kernels with their autograd functions and kernel-aware modules;
``accelerate.py`` switches them on for one model (exported as ``starnet.accelerate``). Kernels take
integer codes for ops and activations; ``starnet.ops`` maps names to codes.
"""
