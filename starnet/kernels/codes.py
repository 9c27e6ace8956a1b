"""The codes the C++ kernels take for fusion ops and activations: the one table of them.

A kernel takes integers, not names, and compares them with the numbers written in its C++ (``csrc/``): ``op == 0``
is star, ``act == 2`` ReLU6 (``csrc/activations.h``). ``starnet.ops`` reads this table to give each registered op and
activation its code; an op or activation without one runs as PyTorch's ops wherever a kernel would have run it. The
equivalence tests (``tests/starnet/kernels``) run every code here through its kernel against PyTorch's op of the same
name, so a number that disagreed with the C++ would fail there.
"""

# Every kernel that merges two branches (fused_mlp.py, demo_block.py) has these ops, and every kernel with an
# activation (those two and fast_bn.py) these activations (act_f/act_d, csrc/activations.h).
OPS = {"star": 0, "sum": 1}
ACTS = {"none": 0, "relu": 1, "relu6": 2}

# DemoNet's block kernel (demo_block.py) has more: GELU in its own build, and in its second, "zoo" build
# (extension(zoo=True)) the ops max and gate and the activation SiLU.
BLOCK_OPS = {**OPS, "max": 2, "gate": 3}
BLOCK_ACTS = {**ACTS, "gelu": 3, "silu": 4}
ZOO_OPS = {"max", "gate"}
ZOO_ACTS = {"silu"}

# The codes only the zoo build has (demo_block.uses_zoo picks the build by them).
ZOO_OP_CODES = frozenset(BLOCK_OPS[name] for name in ZOO_OPS)
ZOO_ACT_CODES = frozenset(BLOCK_ACTS[name] for name in ZOO_ACTS)
