"""DemoNet (isotropic, paper sec. 3.4) and its 2-D toy. Depends on torch and starnet's shared parts
(``starnet.ops``, ``layers``, ``fold``, ``kernels``), never on ``starnet.model``."""
from . import timm_models  # registers starbench_demonet in timm (timm.create_model)
from .model import DemoBlock, DemoNet, DeployDemoBlock, PointDemoNet

__all__ = ["DemoNet", "DemoBlock", "DeployDemoBlock", "PointDemoNet"]
