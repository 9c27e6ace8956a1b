"""StarNet in timm's registry: ``timm.create_model("starbench_starnet_<variant>", op=..., ...)``.

Importing ``starnet`` registers ``starbench_starnet_{s050,s100,s150,s1,s2,s3,s4}``
(``timm.list_models("starbench_*")``); the names start with ``starbench_`` so they never clash with timm's own
``starnet_*``. Each builds the same ``StarNet`` as ``create_starnet(variant, ...)`` through timm's
``build_model_with_cfg``, so ``pretrained_cfg``,
``features_only=True`` and ``pretrained=True`` work as for any timm model. Keyword arguments: starbench's
(``op``, ``act``, ``init``, ``width``, ``depths``; ``base_dim``/``mlp_ratio`` directly) and timm's usual ones
(``num_classes``, ``in_chans``, ``drop_rate``, ``drop_path_rate``, ``global_pool``; ``device``, ``dtype``: where
the parameters are made, ``device="meta"`` allocating none, as timm's own models do).

Pretrained: with ``op="star"`` the state dict is timm's, so S1-S4 load timm's ``starnet_s*.in1k`` weights from the
Hugging Face Hub (``pretrained=True``), or a local file offline (``pretrained_cfg_overlay=dict(file=PATH)``).
There are no sum weights: ``pretrained=True`` with a sum stage is an error.
"""
from __future__ import annotations

from typing import Any, Dict

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import register_notrace_module
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from .kernels.fast_bn import BatchNorm2d
from .model import VARIANTS, StarNet, variant_args

# torch.fx (timm's create_feature_extractor / features_only feature_cls="fx"): trace through starbench's
# kernel-aware BatchNorm2d as one leaf, as fx does for torch's own (its input-rank check is Python control flow).
register_notrace_module(BatchNorm2d)


def _cfg(**kwargs: Any) -> Dict[str, Any]:
    return {"url": "", "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (7, 7), "crop_pct": 0.875,
            "interpolation": "bicubic", "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
            "first_conv": "stem.0.conv", "classifier": "head", "paper_ids": "arXiv:2403.19967",
            "paper_name": "Rewrite the Stars", "origin_url": "https://github.com/ma-xu/Rewrite-the-Stars",
            "license": "apache-2.0", **kwargs}


PRETRAINED = ("s1", "s2", "s3", "s4")  # timm publishes in1k (star) weights for these
default_cfgs = generate_default_cfgs({
    **{f"starbench_starnet_{v}.in1k": _cfg(hf_hub_id=f"timm/starnet_{v}.in1k") for v in PRETRAINED},
    **{f"starbench_starnet_{v}.untrained": _cfg() for v in VARIANTS if v not in PRETRAINED},
})


def checkpoint_filter_fn(state_dict: Dict[str, Any], model: StarNet) -> Dict[str, Any]:
    """timm's and the official checkpoints: the state dict itself or under ``"state_dict"``."""
    return state_dict.get("state_dict", state_dict)


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> StarNet:
    width, depths = kwargs.pop("width", None), kwargs.pop("depths", None)
    if "drop_path_rate" in kwargs:  # timm's name for StarNet's drop_path
        kwargs["drop_path"] = kwargs.pop("drop_path_rate")
    op = kwargs.get("op", "star")
    if pretrained and any(o != "star" for o in ([op] if isinstance(op, str) else op)):
        raise ValueError(f"pretrained StarNet weights exist for op='star' only (got op={op!r})")
    args = variant_args(variant, width, depths)
    args.update(kwargs)
    name = f"starbench_starnet_{variant}"
    return build_model_with_cfg(StarNet, name, pretrained, pretrained_filter_fn=checkpoint_filter_fn,
                                feature_cfg=dict(out_indices=tuple(range(len(args["depths"]))),
                                                 flatten_sequential=True), **args)


@register_model
def starbench_starnet_s050(pretrained: bool = False, **kwargs: Any) -> StarNet:
    return _create("s050", pretrained, **kwargs)


@register_model
def starbench_starnet_s100(pretrained: bool = False, **kwargs: Any) -> StarNet:
    return _create("s100", pretrained, **kwargs)


@register_model
def starbench_starnet_s150(pretrained: bool = False, **kwargs: Any) -> StarNet:
    return _create("s150", pretrained, **kwargs)


@register_model
def starbench_starnet_s1(pretrained: bool = False, **kwargs: Any) -> StarNet:
    return _create("s1", pretrained, **kwargs)


@register_model
def starbench_starnet_s2(pretrained: bool = False, **kwargs: Any) -> StarNet:
    return _create("s2", pretrained, **kwargs)


@register_model
def starbench_starnet_s3(pretrained: bool = False, **kwargs: Any) -> StarNet:
    return _create("s3", pretrained, **kwargs)


@register_model
def starbench_starnet_s4(pretrained: bool = False, **kwargs: Any) -> StarNet:
    return _create("s4", pretrained, **kwargs)


MODEL_NAMES = tuple(f"starbench_starnet_{v}" for v in VARIANTS)
