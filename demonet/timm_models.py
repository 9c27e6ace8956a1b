"""DemoNet in timm's registry: ``timm.create_model("starbench_demonet", width=96, depth=12, op="star", act="none")``.

Importing ``demonet`` registers ``starbench_demonet`` (``timm.list_models("starbench_*")``). It builds the same
``DemoNet`` as ``DemoNet(...)`` through timm's ``build_model_with_cfg``. Keyword arguments: DemoNet's (``width``,
``depth``, ``op``, ``act``, ``patch_size``, ``layer_scale``) and timm's usual ones (``num_classes``, ``in_chans``,
``drop_rate``, ``drop_path_rate``, ``global_pool``, ``device``, ``dtype``). ``features_only=True`` gives the last 3
blocks' maps (an isotropic network: every block has stride ``patch_size``; ``out_indices=`` picks others) through
``forward_intermediates`` (timm's ``FeatureGetterNet``). No pretrained weights exist.
"""
from __future__ import annotations

from typing import Any, Dict

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from .model import DemoNet


def _cfg(**kwargs: Any) -> Dict[str, Any]:
    return {"url": "", "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (14, 14), "crop_pct": 0.875,
            "interpolation": "bicubic", "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
            "first_conv": "stem", "classifier": "head", "paper_ids": "arXiv:2403.19967",
            "paper_name": "Rewrite the Stars", "origin_url": "https://github.com/ma-xu/Rewrite-the-Stars", **kwargs}


default_cfgs = generate_default_cfgs({"starbench_demonet.untrained": _cfg()})  # pool_size: patch 16 on 224


@register_model
def starbench_demonet(pretrained: bool = False, **kwargs: Any) -> DemoNet:
    if "drop_path_rate" in kwargs:  # timm's name for DemoNet's drop_path
        kwargs["drop_path"] = kwargs.pop("drop_path_rate")
    depth = kwargs.get("depth", 12)
    return build_model_with_cfg(DemoNet, "starbench_demonet", pretrained,
                                feature_cfg=dict(feature_cls="getter", out_indices=min(3, max(depth, 1))), **kwargs)


MODEL_NAMES = ("starbench_demonet",)
