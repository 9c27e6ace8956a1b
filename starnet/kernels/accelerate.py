"""``accelerate(model, **switches)``: switch the opt-in kernels on for one model, module by module.

The kernels (``dwconv.py``, ``fused_mlp.py``, ``fast_bn.py``, ``demo_block.py``, and ``torch.compile`` of the
branch merge) compute what the plain modules compute, faster on CPU; they are off unless asked for. A module with a
kernel path opts in by declaring the class attribute ``kernels = PLAIN``; ``accelerate`` gives every such
module in the model its ``KernelOptions``, and the module's forward reads them. Nothing is swapped out:
module classes, parameters, buffers and state-dict keys stay as they are, so checkpoints are unaffected
and ``accelerate(model)`` (all off) returns the model to the plain path. Each kernel still falls back to
PyTorch's ops wherever it does not apply (another device or dtype, eval mode, an op or activation without
a kernel code in ``codes.py``, or a C++ kernel that could not be built: one warning, ``_build.py``).
A module's kernel path sits under ``if not torch.jit.is_scripting():`` (an ``if`` statement, which TorchScript
decides when it compiles): the options and the autograd Functions are Python, so ``torch.jit.script`` compiles the
plain path alone and a scripted model runs PyTorch's ops, whatever its options.

This module knows no model: it imports torch only, so every layer above may use it.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from torch import nn


@dataclass(frozen=True)
class KernelOptions:
    """Which opt-in kernels a module uses: the one declaration of the kernel switches. ``accelerate()``'s keywords,
    the trainer's keys (``trainer.<switch>``, ``experiments.config.schema.TrainerConfig``, on by default there) and
    the keys the config hash leaves out (``experiments.records.config_hash``) are these fields, in this order (the
    order of the keys in ``conf/trainer/default.yaml``)."""
    fast_dwconv: bool = False       # C++ weight gradient of 7x7 depthwise convs (dwconv.py)
    compile_branches: bool = False  # op(act(x1), x2) as one torch.compile'd function while training
    fused_mlp: bool = False         # StarNet's block MLP as one C++ kernel (fused_mlp.py)
    fast_batchnorm: bool = False    # training-mode BatchNorm (+ReLU/ReLU6) as one C++ kernel (fast_bn.py)
    fused_block: bool = False       # DemoNet's whole block as one C++ kernel (demo_block.py)


PLAIN = KernelOptions()
SWITCHES = tuple(f.name for f in fields(KernelOptions))


def accelerate(model: nn.Module, **switches: bool) -> nn.Module:
    """Give every kernel-aware module of ``model`` the ``KernelOptions`` these switches say (in place; a switch not
    given is off, so ``accelerate(model)`` returns it to the plain path); returns ``model``. The C++ kernels are
    CPU-only (elsewhere they fall back); they are built on first use."""
    unknown = sorted(set(switches) - set(SWITCHES))
    if unknown:
        raise TypeError(f"accelerate() has no switch {', '.join(unknown)}; its switches: {', '.join(SWITCHES)}")
    options = KernelOptions(**{name: bool(on) for name, on in switches.items()})
    for module in model.modules():
        if isinstance(getattr(type(module), "kernels", None), KernelOptions):
            module.kernels = options
    return model
