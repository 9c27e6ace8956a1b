"""Which CPU fast paths a run takes: one place reads ``trainer.fast_paths`` and its per-path switches.

Every fast path computes the same math as PyTorch's plain path (to float rounding; each has its
equivalence tests), is on by default on the CPU, and is off on other devices (they are CPU kernels and CPU
allocator or optimizer settings). ``trainer.fast_paths=false`` turns them all off with one key.
"""
from __future__ import annotations

import logging
import os
from typing import Dict

import torch
from omegaconf import DictConfig

from starnet.kernels._build import compiler_available
from starnet.kernels.accelerate import SWITCHES as KERNEL_SWITCHES  # trainer.<switch>: KernelOptions' fields

log = logging.getLogger("starbench")

FUSED_OPTIMIZERS = ("adam", "adamw")  # timm names of torch optimizers with a fused CPU step


def cpu_fast_paths(tcfg: DictConfig, device: torch.device) -> bool:
    """Whether this run may take the CPU fast paths at all: on the CPU, unless ``trainer.fast_paths=false``."""
    return device.type == "cpu" and bool(tcfg.get("fast_paths", True))


def kernel_switches(tcfg: DictConfig, device: torch.device) -> Dict[str, bool]:
    """``starnet.accelerate()``'s options from ``trainer.<switch>``: all off (PyTorch's plain ops) off the
    CPU, with ``trainer.fast_paths=false``, or without a C++ compiler (then one log line)."""
    wanted = {key: bool(tcfg.get(key, False)) for key in KERNEL_SWITCHES}
    if not (cpu_fast_paths(tcfg, device) and any(wanted.values())):
        return dict.fromkeys(KERNEL_SWITCHES, False)
    if not compiler_available():
        log.warning("no C++ compiler (%s): training with PyTorch's plain ops (trainer.fast_paths needs one)",
                    os.environ.get("CXX", "c++"))
        return dict.fromkeys(KERNEL_SWITCHES, False)
    return wanted


def optimizer_fast_path(tcfg: DictConfig, device: torch.device) -> Dict[str, bool]:
    """``create_optimizer_v2`` options: torch's fused step for Adam/AdamW, multi-tensor (foreach) ops for the
    rest, in place of the per-parameter loop torch takes on CPU by default (it takes foreach only on GPUs). The
    same math to float rounding (tests/experiments/train/test_trainer.py). DemoNet d12 w16 has ~110 parameter
    tensors: AdamW's step 6.7 ms in the loop, 2.6 ms foreach, 0.8 ms fused."""
    if not cpu_fast_paths(tcfg, device):
        return {}
    return {"fused": True} if tcfg.optimizer in FUSED_OPTIMIZERS else {"foreach": True}


def keep_freed_memory(tcfg: DictConfig, device: torch.device) -> bool:
    """Whether to keep freed CPU memory in the process (``experiments/train/allocator.py``): it needs no
    compiler, so only ``trainer.fast_paths`` and ``trainer.reuse_freed_memory`` decide."""
    return cpu_fast_paths(tcfg, device) and bool(tcfg.get("reuse_freed_memory", True))
