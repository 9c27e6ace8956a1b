"""The process a classification run computes in: its device (``resolve_device``: ``trainer.device`` and scripts'
``--device``, the one place device names are parsed), its place among data-parallel processes (torch DDP:
``torchrun --nproc_per_node=N run.py ...``) and its random generators' seed. ``start_processes`` is the recipe's
one call for device and rank.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK (under submitit they are derived from its job environment); without them
the DDP parts here are no-ops and a run is a plain single process. ``trainer.batch_size`` is the *global* batch:
each rank trains on its slice of every batch, so N ranks see the same batches as one process.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Tuple

import numpy as np
import torch
import torch.distributed as dist

from ..errors import StarbenchError


def resolve_device(name: str, key: str = "trainer.device") -> torch.device:
    """``auto`` (CUDA if present, else CPU) or a torch device name; ``key`` names the setting in errors."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise StarbenchError(f"unknown {key} '{name}'; use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):  # torch knows meta, xpu, mps...: starbench trains on CPU and CUDA
        raise StarbenchError(f"{key}={name}: starbench runs on cpu or cuda; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise StarbenchError(f"{key}={name} but this machine has no CUDA device; use auto or cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise StarbenchError(f"{key}={name} but this machine has {torch.cuda.device_count()} CUDA device(s) "
                             f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return device


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_rank() -> int:
    """This process's rank, before the process group exists: torchrun's RANK, or submitit's task number (exported
    here, so that the rank is known when ``experiments.entry.run_job`` decides which process owns the run dir)."""
    _export_submitit_env()
    return int(os.environ.get("RANK", 0))


def _export_submitit_env() -> None:
    """Under hydra/launcher=slurm (or submitit_local) with several tasks, each task is a rank: turn
    submitit's job environment into the RANK/WORLD_SIZE/MASTER_* variables torch expects."""
    if "WORLD_SIZE" in os.environ or not os.environ.get("SUBMITIT_EXECUTOR"):
        return
    import submitit
    if submitit.JobEnvironment().num_tasks > 1:
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)


def init_distributed(device: torch.device) -> DistInfo:
    _export_submitit_env()
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world <= 1:
        return DistInfo()
    info = DistInfo(env_rank(), world, int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return info


def all_reduce_sum(values, device: torch.device, info: DistInfo):
    """Sum a list of numbers over ranks (returns the list unchanged in a single process)."""
    if not info.enabled:
        return list(values)
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def broadcast_object(obj, info: DistInfo):
    """Rank 0's value on every rank (e.g. the run dir, so all ranks share one)."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def device_for(device: torch.device, info: DistInfo) -> torch.device:
    """One GPU per local rank."""
    return torch.device("cuda", info.local_rank) if device.type == "cuda" and info.enabled else device


def start_processes(device: torch.device, global_batch: int) -> Tuple[torch.device, DistInfo]:
    """This process's device and place among the run's processes: under torchrun, its rank in DDP's process group
    and (on CUDA) its own GPU; else one process on ``device``. ``global_batch`` must split evenly among them."""
    info = init_distributed(device)
    if global_batch % info.world_size:
        raise StarbenchError(f"trainer.batch_size={global_batch} (the global batch) is not divisible by "
                             f"the {info.world_size} processes")
    return device_for(device, info), info


def seed_everything(seed: int) -> None:
    """Python's, numpy's and torch's global generators from ``seed`` (every rank alike)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
