"""Build the configured model and describe it (identity fields, params, FLOPs)."""
from __future__ import annotations

from typing import Any, Dict

import timm
import torch
from omegaconf import DictConfig
from torch import nn

import demonet  # noqa: F401  (registers starbench_demonet in timm)
from starnet import VARIANTS  # importing starnet registers starbench_starnet_*
from starnet.model import variant_args

from ..config import plain

MODELS = ("demonet", "starnet")


def build_model(cfg: DictConfig, in_chans: int, num_classes: int) -> nn.Module:
    """The configured model, built through timm's registry (``starbench_demonet``, ``starbench_starnet_<variant>``:
    ``demonet/timm_models.py``, ``starnet/timm_models.py``), the same module as ``DemoNet(...)`` /
    ``create_starnet(...)`` with the same initialisation."""
    m = cfg.model
    if m.name == "demonet":
        patch = m.patch_size or cfg.data.patch_size
        return timm.create_model("starbench_demonet", width=cfg.width, depth=cfg.depth, op=plain(cfg.op), act=m.act,
                                 num_classes=num_classes, in_chans=in_chans, patch_size=patch,
                                 drop_path_rate=m.drop_path, layer_scale=m.layer_scale)
    if m.name == "starnet":
        depth = plain(cfg.depth)
        variant_args(m.variant, cfg.width, depth)  # an unknown variant or a depth list of another length: one line
        return timm.create_model(f"starbench_starnet_{m.variant}", op=plain(cfg.op), act=m.act,
                                 num_classes=num_classes, in_chans=in_chans, drop_path_rate=m.drop_path,
                                 width=cfg.width, depths=depth, init=m.init)
    raise ValueError(f"unknown model '{m.name}'; valid: {', '.join(MODELS)}")


def model_identity(cfg: DictConfig) -> Dict[str, Any]:
    """The fields that name a run (metrics.json, W&B, checkpoint compatibility)."""
    m = cfg.model
    width, depth = cfg.width, plain(cfg.depth)
    if m.name == "starnet" and m.variant in VARIANTS:  # record the resolved architecture, not null
        spec = VARIANTS[m.variant]
        width = spec.base_dim if width is None else width
        depth = list(spec.depths) if depth is None else depth
    return {"model": m.name, "variant": m.get("variant"), "op": plain(cfg.op), "act": m.act,
            "width": width, "depth": depth}


def human_count(n: float) -> str:
    """A count with an SI prefix and 3 significant digits: 2.85k, 4.52M, 1.03G (tiny models print sensibly)."""
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{prefix}"
    return f"{n:.3g}"


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(model: nn.Module, input_shape) -> int:
    """Forward multiply-adds for one input: what the paper (and fvcore) call FLOPs."""
    from torch.utils.flop_counter import FlopCounterMode
    was_training = model.training
    model.eval()
    param = next(model.parameters())
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.zeros(1, *input_shape, device=param.device, dtype=param.dtype))
    model.train(was_training)
    return counter.get_total_flops() // 2
