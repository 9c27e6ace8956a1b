"""Fusion ops and activations: the one place where "star" and "sum" are defined.

A fusion op merges a block's two branches, ``op(act(x1), x2)``. DemoNet and StarNet both take
an op *name* and look it up here, so a new op is one function plus one ``@register_op`` line::

    @register_op("cube")
    def cube(a, b):
        return a * b * b

Every path runs it, the opt-in accelerated ones too (``starnet.accelerate``): the C++ kernels take an op by
its ``kernel_code`` (the built-in ops' codes are the table ``kernels/codes.py``), and an op registered without one
runs as the plain PyTorch function there. The same holds for activations (``ACT_KERNEL_CODES``, from that table).

The zoo of ops beyond star and sum, for comparing star with other ways of merging two branches (README "Fusion
ops"):

- ops: ``star`` (a * b), ``sum`` (a + b), ``max`` (max(a, b)), ``gate`` (a * sigmoid(b)) and ``concat``
  ([a, b] along the channels, which the block's output projection then mixes: ``out_mult=2``);
- presets (``OP_PRESETS``), an op *with* the branch activation, so that one ``op`` key can sweep them:
  ``bilinear`` (star, no activation), ``glu`` (gate, no activation), ``reglu``/``geglu``/``swiglu`` (star
  after relu/gelu/silu);
- any function by its import path, ``op="mypkg.ops:my_op"``, imported and registered under that path on
  first use (``get_op``).

An op's output width (``out_mult``): 1 for an element-wise op (its output as wide as each branch), 2 for
one that keeps both branches' channels (concat; called as ``fn(a, b, dim=<channel dim>)``). The blocks size their branches with ``branch_widths``,
which keeps a block's parameter count that of star's (the rule is in its docstring).

This module imports torch and the kernels' table of codes only (the layer above the kernels).
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch import nn

from .kernels import codes

FusionFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
FUSION_OPS: Dict[str, FusionFn] = {}
OP_KERNEL_CODES: Dict[str, int] = {}  # op name -> the code of the same merge in the C++ kernels
BLOCK_OP_KERNEL_CODES: Dict[str, int] = {}  # op name -> its code in DemoNet's block kernel alone (its zoo build)
OP_OUT_MULTS: Dict[str, int] = {}     # op name -> output channels per branch channel, where not 1
OUT_MULTS = (1, 2)                    # element-wise; both branches' channels (``branch_widths``)

# An op together with the activation of its first branch, ``op(act(x1), x2)``: the GLU family by name
# (Shazeer 2020, "GLU Variants Improve Transformer"), so that one ``op`` key sweeps them beside plain ops.
# The blocks resolve a preset (``branch_merge``); its activation replaces ``act`` there (and only there:
# StarNet's stem keeps ``act``).
OP_PRESETS: Dict[str, Tuple[str, str]] = {
    "bilinear": ("star", "none"),  # x1 * x2: the bilinear layer, no activation (paper Tables 4 and 9)
    "glu": ("gate", "none"),       # x1 * sigmoid(x2): GLU itself
    "reglu": ("star", "relu"),     # relu(x1) * x2
    "geglu": ("star", "gelu"),     # gelu(x1) * x2: DemoNet's own star block
    "swiglu": ("star", "silu"),    # silu(x1) * x2
}


def _check_out_mult(out_mult: Any, where: str = "") -> None:
    if out_mult not in OUT_MULTS or isinstance(out_mult, bool):
        raise ValueError(f"{where}out_mult must be 1 (element-wise) or 2 (both branches' channels), got {out_mult!r}")


def register_op(name: str, kernel_code: Optional[int] = None, out_mult: int = 1,
                block_kernel_code: Optional[int] = None) -> Callable[[FusionFn], FusionFn]:
    """Decorator that registers ``fn(a, b) -> Tensor`` under ``name``. ``kernel_code``: the C++ kernels'
    code for the same function (``kernels.codes.OPS``), if they have it; without one the kernels leave the
    op to PyTorch. ``block_kernel_code``: a code only DemoNet's block kernel has (``kernels.codes.BLOCK_OPS``; its
    ``kernel_code`` where not given). ``out_mult``: 1 if ``fn`` is element-wise (a and b of one width, the output
    of that width); 2 if its output has the channels of a and b together (a concatenation, called as
    ``fn(a, b, dim=<the channel dim>)``; the blocks may then give a and b widths that differ by one,
    ``branch_widths``). The C++ kernels implement element-wise merges only."""
    for key, code in (("kernel_code", kernel_code), ("block_kernel_code", block_kernel_code)):
        if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
            raise TypeError(f"{key} must be an int or None, got {code!r}")
    _check_out_mult(out_mult)
    if (kernel_code is not None or block_kernel_code is not None) and out_mult != 1:
        raise ValueError("the C++ kernels implement element-wise merges only: an op with out_mult=2 has no kernel_code")

    def add(fn: FusionFn) -> FusionFn:
        if name in FUSION_OPS or name in OP_PRESETS:
            raise ValueError(f"fusion op '{name}' is already registered")
        FUSION_OPS[name] = fn
        OP_KERNEL_CODES.pop(name, None)
        BLOCK_OP_KERNEL_CODES.pop(name, None)
        OP_OUT_MULTS.pop(name, None)
        if kernel_code is not None:
            OP_KERNEL_CODES[name] = kernel_code
        if block_kernel_code is not None:
            BLOCK_OP_KERNEL_CODES[name] = block_kernel_code
        if out_mult != 1:
            OP_OUT_MULTS[name] = out_mult
        return fn
    return add


@register_op("star", kernel_code=codes.OPS["star"])
def star(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The star operation of the paper: element-wise multiplication."""
    return a * b


@register_op("sum", kernel_code=codes.OPS["sum"])
def sum_(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The baseline: element-wise addition."""
    return a + b


@register_op("max", block_kernel_code=codes.BLOCK_OPS["max"])
def maximum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Element-wise maximum: nonlinear in the pair like star, but no product of the two (piecewise linear)."""
    return torch.maximum(a, b)


@register_op("gate", block_kernel_code=codes.BLOCK_OPS["gate"])
def gate(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """GLU's gate (Dauphin et al. 2017, ``(xW + b) * sigmoid(xV + c)``): ``a * sigmoid(b)``. In a block that
    is ``act(x1) * sigmoid(x2)``: exactly GLU with ``act=none`` (the ``glu`` preset), a GLU whose value path is
    activated otherwise (DemoNet's default gelu: ``gelu(x1) * sigmoid(x2)``). Star without the sigmoid."""
    return a * torch.sigmoid(b)


@register_op("concat", out_mult=2)
def concat(a: torch.Tensor, b: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Both branches side by side along the channels (``dim``: -1 in DemoNet's channels-last blocks, 1 in
    StarNet's NCHW ones). The block's output projection then mixes them, ``g([act(x1), x2]) = g1 act(x1) +
    g2 x2``: an MLP with a linear bypass, no interaction of the two branches, at star's parameter count
    (``branch_widths``)."""
    return torch.cat([a, b], dim=dim)


def branch_merge(op: str, act: str) -> Tuple[str, str]:
    """The fusion op and first-branch activation a block uses for ``op``: a preset's pair (``OP_PRESETS``:
    ``bilinear`` -> star with no activation), else ``(op, act)`` as given."""
    return OP_PRESETS.get(op, (op, act)) if isinstance(op, str) else (op, act)


def get_op(name: str) -> FusionFn:
    """The function of op ``name``: a registered op, or ``"module:function"``, imported and registered under
    that path on first use (``op=mypkg.ops:my_op``: any function on the Python path, no edit of this package)."""
    if isinstance(name, str) and name not in FUSION_OPS and ":" in name:
        _import_op(name)
    if name not in FUSION_OPS:
        preset = (f"; '{name}' is a preset ({OP_PRESETS[name][0]} after act={OP_PRESETS[name][1]}), which the "
                  "models resolve (branch_merge)") if name in OP_PRESETS else ""
        raise ValueError(f"unknown op '{name}'; valid ops: {', '.join(sorted(FUSION_OPS))}; presets (op and "
                         f"activation): {', '.join(sorted(OP_PRESETS))}; or a function by its import path, "
                         f"module:function{preset}")
    return FUSION_OPS[name]


def check_op(name: str) -> str:
    """``name`` is something a model takes as its op (an op, a preset or an import path), else one-line ValueError."""
    get_op(branch_merge(name, "none")[0])
    return name


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _import_op(path: str) -> None:
    """Register the function at ``path`` ("module:function", or "module:Class.attr") under that path. The
    function may declare ``out_mult = 2`` (an attribute) if it concatenates; a quick call on small tensors
    checks that it maps two branches to one output of the declared width. Errors are one line (ValueError)."""
    module_name, _, attr = path.partition(":")
    where = f"op '{path}'"
    if not module_name or not attr or ":" in attr:
        raise ValueError(f"{where}: an op by import path is module:function, e.g. op=mypkg.ops:my_op")
    try:
        fn = importlib.import_module(module_name)
    except Exception as e:  # ModuleNotFoundError, or the module's own error while importing
        raise ValueError(f"{where}: cannot import module '{module_name}' ({_first_line(e)}); is its directory "
                         "on PYTHONPATH?") from None
    for part in attr.split("."):
        if not hasattr(fn, part):
            raise ValueError(f"{where}: module '{module_name}' has no '{attr}'") from None
        fn = getattr(fn, part)
    if not callable(fn):
        raise ValueError(f"{where}: '{attr}' in module '{module_name}' is not callable (a fusion op is fn(a, b))")
    out_mult = getattr(fn, "out_mult", 1)
    _check_out_mult(out_mult, f"{where}: ")
    a, b = torch.randn(2, 3), torch.randn(2, 3)
    try:
        with torch.no_grad():
            out = fn(a, b) if out_mult == 1 else fn(a, b, dim=-1)
    except Exception as e:
        if out_mult == 1:
            raise ValueError(f"{where}: calling it as fn(a, b) on two (2, 3) tensors failed ({_first_line(e)})") from None
        raise ValueError(f"{where}: calling it as fn(a, b, dim=-1) on two (2, 3) tensors failed ({_first_line(e)}); "
                         "an op with out_mult = 2 is given the channel dim to join along: def fn(a, b, dim): "
                         "...") from None
    want = (2, 3 * out_mult)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{where}: fn(a, b) on two (2, 3) tensors must give a {want} tensor (out_mult={out_mult}), "
                         f"got {got}")
    register_op(path, out_mult=out_mult)(fn)


def op_kernel_code(name: str) -> Optional[int]:
    """The C++ kernels' code for op ``name``, or None (then they leave it to PyTorch)."""
    return OP_KERNEL_CODES.get(name) if name in FUSION_OPS else None


def block_op_kernel_code(name: str) -> Optional[int]:
    """DemoNet's block kernel's code for op ``name`` (``kernel_code``, or one it alone has), or None."""
    return BLOCK_OP_KERNEL_CODES.get(name, op_kernel_code(name)) if name in FUSION_OPS else None


def op_out_mult(name: str) -> int:
    """Output channels per branch channel of op ``name`` (1: element-wise; 2: both branches', e.g. concat)."""
    get_op(name)  # an import path not seen yet in this process (an unpickled model) registers here
    return OP_OUT_MULTS.get(name, 1)


def branch_widths(op: str, dim: int, hidden: int) -> Tuple[int, int]:
    """The widths ``(h1, h2)`` of a block's branches x1, x2 for ``op``, where star's are ``hidden`` each; the
    output projection then takes ``fusion_width(op, h1, h2)`` channels back to ``dim``.

    The rule: every op gets star's parameter count. In DemoNet's and StarNet's blocks the branch widths enter
    the count only through the branch projections dim -> h1 and dim -> h2 (weights and biases: (h1 + h2)(dim +
    1)) and the output projection's weight (out x dim; its bias, the norms and the depthwise convs do not
    depend on them). An element-wise op keeps star's widths, h1 = h2 = out = hidden: hidden (3 dim + 2). An op
    with ``out_mult=2`` has out = h1 + h2 = H, so H (2 dim + 1): H = round(hidden (3 dim + 2) / (2 dim + 1)),
    split as evenly as it goes (h1 = h2 or h1 = h2 + 1). Rounding leaves at most dim + 1/2 parameters per
    block: < 1% of a DemoNet block from width 6 up, less in StarNet's wider blocks
    (``tests/starnet/test_ops.py`` checks every registered op in both models)."""
    if op_out_mult(op) == 1:
        return hidden, hidden
    total = max(2, round(hidden * (3 * dim + 2) / (2 * dim + 1)))
    return total - total // 2, total // 2


def fusion_width(op: str, h1: int, h2: int) -> int:
    """The channels of ``op(a, b)`` for branches of ``h1`` and ``h2`` channels."""
    return h1 if op_out_mult(op) == 1 else h1 + h2


class Fusion(nn.Module):
    """``op(a, b)`` as a module, so the op shows up in ``print(model)``. ``channel_dim``: where the channels
    are (-1 in DemoNet's channels-last blocks, 1 in StarNet's NCHW ones), for ops that concatenate."""

    channel_dim = -1  # class defaults: a Fusion pickled before these attributes existed loads as channels-last,
    _out_mult = 1     # element-wise (every op then was)
    __jit_unused_properties__ = ["kernel_code", "block_kernel_code"]  # registry look-ups: Python, not TorchScript

    def __init__(self, op: str, channel_dim: int = -1):
        super().__init__()
        self.op = op
        self.fn = get_op(op)
        self.channel_dim = channel_dim
        self._out_mult = op_out_mult(op)  # looked up once, not on every forward
        self._cat_dim = self._concat_dim()

    def _concat_dim(self) -> Optional[int]:
        # None for an element-wise op: TorchScript decides ``is None`` on a None-valued attribute when it compiles,
        # so it never compiles the call with ``dim=``, which an element-wise op's function does not take
        return None if self._out_mult == 1 else self.channel_dim

    def __setstate__(self, state: Dict[str, Any]) -> None:
        super().__setstate__(state)
        if "_cat_dim" not in self.__dict__:  # pickled before it: from what the Fusion had
            self._cat_dim = self._concat_dim()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self._cat_dim is None:
            return self.fn(a, b)
        return self.fn(a, b, dim=self._cat_dim)

    @property
    def kernel_code(self) -> Optional[int]:
        return op_kernel_code(self.op)

    @property
    def block_kernel_code(self) -> Optional[int]:
        return block_op_kernel_code(self.op)

    @property
    def out_mult(self) -> int:
        return self._out_mult

    def extra_repr(self) -> str:
        return self.op


ACTIVATIONS: Dict[str, Callable[[], nn.Module]] = {
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "hardswish": nn.Hardswish,
    "silu": nn.SiLU,  # swish: star after it is SwiGLU (the swiglu preset)
    "none": nn.Identity,  # the activation-free ablation (paper Tables 4, 9)
}
# The activations the C++ kernels implement (``kernels/codes.py``); the others run as PyTorch's there.
ACT_KERNEL_CODES: Dict[str, int] = codes.ACTS
# DemoNet's block kernel (``kernels/demo_block.py``) also has GELU, and in its zoo build SiLU.
BLOCK_ACT_KERNEL_CODES: Dict[str, int] = codes.BLOCK_ACTS


def make_act(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{name}'; valid: {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]()


def act_kernel_code(name: str) -> Optional[int]:
    """The C++ kernels' code for activation ``name``, or None (then they leave it to PyTorch)."""
    return ACT_KERNEL_CODES.get(name)


def block_act_kernel_code(name: str) -> Optional[int]:
    """The DemoNet block kernel's code for activation ``name``, or None (then the block runs as PyTorch's)."""
    return BLOCK_ACT_KERNEL_CODES.get(name)


_COMPILED: Dict[tuple, FusionFn] = {}


def act_then_op(act_name: str, act: nn.Module, fusion: Fusion, a: torch.Tensor, b: torch.Tensor,
                compiled: bool = False) -> torch.Tensor:
    """``op(act(a), b)``: the blocks' branch merge, in one place for DemoNet and StarNet. ``compiled``
    (``accelerate(model, compile_branches=True)``): one compiled kernel (forward and backward) while
    training, instead of separate activation and op kernels with a tensor in between."""
    if compiled and torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
        op_fn = get_op(fusion.op)
        dim = fusion.channel_dim if fusion.out_mult != 1 else None
        key = (act_name, fusion.op, op_fn, dim)  # the function too: an op name registered again is another op
        fn = _COMPILED.get(key)
        if fn is None:  # one compiled function per (activation, op, layout), shared by every block
            act_fn = make_act(act_name)
            merge = op_fn if dim is None else (lambda x, y: op_fn(x, y, dim=dim))
            fn = _COMPILED[key] = torch.compile(lambda x, y: merge(act_fn(x), y), dynamic=False)
        return fn(a, b)
    return fusion(act(a), b)


def check_positive_int(name: str, value) -> int:
    """Width/depth style arguments: a clear error instead of an empty or negative model."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_one_op(model: str, op) -> str:
    """An isotropic model (DemoNet) has one op for every block: a per-stage list is StarNet's."""
    if not isinstance(op, str):
        raise ValueError(f"{model} takes one op for all its blocks (e.g. op=star or op=sum), got {list(op)!r}; "
                         "a list of per-stage ops is for StarNet (model=starnet)")
    return op
