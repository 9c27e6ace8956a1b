"""StarNet and the shared parts DemoNet builds on. Depends on torch only.

Layers, each importing only from those below it: ``kernels/`` (C++ CPU kernels, ``accelerate``) <
``ops.py`` (fusion-op + activation registry), ``layers.py``, ``fold.py`` (deploy-time folding) <
``model.py`` (StarNet and its deploy form) < ``timm_models.py`` (StarNet in timm's registry:
``timm.create_model("starbench_starnet_s1", op="sum")``); ``demonet`` sits beside ``model.py``.
"""
from .fold import fold_conv_bn, fold_linear_branch, fuse_conv_bn, reparameterize
from .kernels.accelerate import KernelOptions, accelerate
from .model import INITS, VARIANTS, DeployStarBlock, StarBlock, StarNet, StarNetSpec, create_starnet
from .ops import ACTIVATIONS, FUSION_OPS, Fusion, get_op, make_act, register_op
from . import timm_models  # registers starbench_starnet_* in timm (timm.create_model)

__all__ = ["StarNet", "StarBlock", "StarNetSpec", "VARIANTS", "INITS", "create_starnet", "DeployStarBlock",
           "FUSION_OPS", "Fusion", "get_op", "register_op", "ACTIVATIONS", "make_act",
           "reparameterize", "fuse_conv_bn", "fold_conv_bn", "fold_linear_branch",
           "accelerate", "KernelOptions"]
