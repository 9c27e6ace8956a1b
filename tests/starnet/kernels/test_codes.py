"""The table of op and activation codes: the names are the registry's, and the codes the C++ names are the table's."""
import re

from starnet.kernels import _build, codes
from starnet.ops import ACTIVATIONS, FUSION_OPS


def test_every_code_names_a_registered_op_or_activation():
    assert set(codes.BLOCK_OPS) <= set(FUSION_OPS) and set(codes.BLOCK_ACTS) <= set(ACTIVATIONS)
    assert codes.OPS.items() <= codes.BLOCK_OPS.items() and codes.ACTS.items() <= codes.BLOCK_ACTS.items()
    assert codes.ZOO_OPS <= set(codes.BLOCK_OPS) and codes.ZOO_ACTS <= set(codes.BLOCK_ACTS)
    assert len(set(codes.BLOCK_OPS.values())) == len(codes.BLOCK_OPS)  # one code per op, one per activation
    assert len(set(codes.BLOCK_ACTS.values())) == len(codes.BLOCK_ACTS)


def test_the_codes_the_block_kernel_names_are_the_tables():
    """The block kernel compares act with named constants for GELU and SiLU: they are the table's codes (the other
    codes are checked by running them: the kernels' equivalence tests)."""
    cpp = (_build.CSRC / "demo_block.cpp").read_text()
    named = {name: int(code) for name, code in re.findall(r"static const int64_t (GELU|SILU) = (\d+);", cpp)}
    assert named == {"GELU": codes.BLOCK_ACTS["gelu"], "SILU": codes.BLOCK_ACTS["silu"]}
