"""The machine a classification run trains on, set up in one call: ``prepare_device`` settles the CPU's threads,
kernels, allocator and optimizer step (and, on CUDA, cuDNN's autotuner), places the model, and returns what the
training loop needs (``Machine``).

The CPU fast paths (the C++ kernels, the allocator setting, the fused optimizer step) each compute the same math as
PyTorch's plain path (to float rounding; each has its equivalence tests), are on by default on the CPU, and off on
other devices (they are CPU kernels and CPU allocator or optimizer settings). ``trainer.fast_paths=false`` turns
them all off with one key; this module is the one place that reads those keys.
"""
from __future__ import annotations

import logging
import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch
from omegaconf import DictConfig
from torch import nn

from starnet import accelerate
from starnet.kernels._build import compiler_available
from starnet.kernels.accelerate import SWITCHES as KERNEL_SWITCHES  # trainer.<switch>: KernelOptions' fields

from .allocator import reuse_freed_memory
from .device import DistInfo
from .threads import set_threads, training_step

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


@dataclass(frozen=True)
class Machine:
    """Where and how the training loop computes, as ``prepare_device`` settled it."""
    device: torch.device
    dist: DistInfo
    channels_last: bool                 # inputs (and the model) in channels_last memory format
    autocast: Any                       # bf16 autocast (trainer.amp), else a no-op context
    optimizer_options: Dict[str, bool]  # create_optimizer_v2's fused/foreach step
    threads: Optional[int] = None       # torch's intra-op threads of a CPU run (None on a GPU)


def prepare_device(model: nn.Module, tcfg: DictConfig, device: torch.device, dist: DistInfo, *,
                   channels_last: bool, input_shape: Tuple[int, int, int], num_classes: int,
                   saved_threads: Optional[int] = None) -> Tuple[nn.Module, Machine]:
    """The model ready to train on ``device`` and the ``Machine`` the loop runs on, in this order: the process-wide
    settings (denormals, the allocator, cuDNN's autotuner: set either way, as an earlier run in this process may
    have changed them), the CPU kernels (``starnet.accelerate``), SyncBatchNorm under DDP, the model on its device
    and memory format, then torch's threads (``trainer.threads``: ``auto`` times this model's step as it will train;
    ``saved_threads``: a resumed checkpoint's count, kept)."""
    cpu = device.type == "cpu"
    # Denormal floats make CPU kernels slower.
    torch.set_flush_denormal(cpu and bool(tcfg.flush_denormal))
    reuse_freed_memory(keep_freed_memory(tcfg, device))
    torch.backends.cudnn.benchmark = device.type == "cuda" and bool(tcfg.cudnn_benchmark)
    model = accelerate(model, **kernel_switches(tcfg, device))
    if dist.enabled and tcfg.sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    use_amp = device.type == "cuda" if tcfg.amp == "auto" else bool(tcfg.amp)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if use_amp else nullcontext()
    threads = None
    if cpu:
        batch = max(1, tcfg.batch_size // dist.world_size)
        threads = set_threads(tcfg.threads, lambda: training_step(model, batch, input_shape, num_classes,
                                                                  channels_last, autocast),
                              saved=saved_threads, announce=dist.is_main)
    return model, Machine(device, dist, channels_last, autocast, optimizer_fast_path(tcfg, device), threads)
