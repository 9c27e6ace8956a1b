"""StarNet and the fusion-op registry. Depends on torch only."""
from .deploy import fuse_conv_bn, reparameterize
from .model import INITS, VARIANTS, StarBlock, StarNet, StarNetSpec, create_starnet
from .ops import ACTIVATIONS, FUSION_OPS, Fusion, get_op, make_act, register_op

__all__ = ["StarNet", "StarBlock", "StarNetSpec", "VARIANTS", "INITS", "create_starnet",
           "FUSION_OPS", "Fusion", "get_op", "register_op", "ACTIVATIONS", "make_act",
           "reparameterize", "fuse_conv_bn"]
