"""``trainer.device`` (and scripts' ``--device``) -> a torch.device: the one place device names are parsed."""
from __future__ import annotations

import torch

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
