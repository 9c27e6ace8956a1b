"""StarNet (Ma et al., "Rewrite the Stars", CVPR 2024) with a pluggable fusion op.

With ``op="star"`` the module tree, state-dict keys and maths equal timm's ``starnet_*`` (and the
official repo's), so the released ImageNet weights load unchanged. ``op`` may also be one name per
stage, e.g. ``["sum", "sum", "star", "star"]`` for the paper's Table 7 ablation. Every op and preset of
``starnet.ops`` keeps star's parameter count (``concat`` through its branch widths, ``ops.branch_widths``).

Deploy form (``StarNet.reparameterize`` / ``starnet.reparameterize``; helpers in ``fold.py``), in place,
for inference (eval mode only):
- every Conv+BatchNorm pair (stem, downsamplers, each block's first 7x7 depthwise conv and ``g``)
  becomes one Conv2d with the BatchNorm folded into its weight and bias;
- each block's two branch convs ``f1`` and ``f2`` (both 1x1 on the same input) become one conv with
  twice the output channels, split after it;
- with the sum op, f2 and its share of g fold into one C -> C conv (the branch is linear; see
  ``DeployStarBlock``): 20% fewer parameters and block-MLP FLOPs of 9C^2 instead of 12C^2 per pixel;
- the final BatchNorm folds into the classifier (a per-channel affine map commutes with the mean pool).

The opt-in CPU kernels are switched on per model by ``starnet.accelerate(model, ...)``
(``kernels/accelerate.py``); without it, and under TorchScript, every forward below is plain PyTorch.
"""
# No ``from __future__ import annotations``: torch.fx copies the model's forward annotations into the code it
# generates (timm's fx feature extraction), and TorchScript cannot compile that code from string annotations.
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .fold import fold_conv_bn, fold_linear_branch, fold_norm_into_linear
from .kernels.accelerate import PLAIN
from .kernels.fast_bn import BatchNorm2d, fast_batch_norm
from .kernels.fused_mlp import fused_mlp
from .layers import ConvBN, DropPath, GlobalPool, TimmApiDefaults, drop_path_rates, take_indices
from .ops import (Fusion, act_kernel_code, act_then_op, branch_merge, branch_widths, check_positive_int,
                  fusion_width, make_act)


@dataclass(frozen=True)
class StarNetSpec:
    base_dim: int
    depths: Tuple[int, ...]
    mlp_ratio: int


# Paper Table 5 (S1-S4) and Table 13 (very small models); identical to the official/timm code.
VARIANTS: Dict[str, StarNetSpec] = {
    "s050": StarNetSpec(16, (1, 1, 3, 1), 3),
    "s100": StarNetSpec(20, (1, 2, 4, 1), 4),
    "s150": StarNetSpec(24, (1, 2, 4, 2), 3),
    "s1": StarNetSpec(24, (2, 2, 8, 3), 4),
    "s2": StarNetSpec(32, (1, 2, 6, 2), 4),
    "s3": StarNetSpec(32, (2, 2, 8, 4), 4),
    "s4": StarNetSpec(32, (3, 3, 12, 5), 4),
}

# "official": what the released code does. Its ``isinstance(m, nn.Linear or nn.Conv2d)`` evaluates
# to ``nn.Linear``, so only the head gets trunc_normal(.02); convs keep PyTorch's default init.
# "timm": timm's port, which also gives every conv weight trunc_normal(.02).
INITS = ("official", "timm")


class StarBlock(nn.Module):
    """dwconv7x7+BN -> op(act(f1(x)), f2(x)) -> g 1x1+BN -> dwconv7x7 -> residual."""

    kernels = PLAIN  # set by starnet.accelerate(): fused_mlp, compile_branches (the class default: plain)

    def __init__(self, dim: int, mlp_ratio: int, op: str = "star", act: str = "relu6", drop_path: float = 0.0,
                 device=None, dtype=None):
        dd = {"device": device, "dtype": dtype}
        super().__init__()
        op, act = branch_merge(op, act)  # a preset (bilinear, swiglu, ...) is an op and its activation
        # mlp_ratio * dim each, but for an op that concatenates them (star's parameter count: ops.branch_widths)
        h1, h2 = branch_widths(op, dim, mlp_ratio * dim)
        self.dwconv = ConvBN(dim, dim, 7, 1, 3, groups=dim, with_bn=True, **dd)
        self.f1 = ConvBN(dim, h1, 1, with_bn=False, **dd)
        self.f2 = ConvBN(dim, h2, 1, with_bn=False, **dd)
        self.g = ConvBN(fusion_width(op, h1, h2), dim, 1, with_bn=True, **dd)
        self.dwconv2 = ConvBN(dim, dim, 7, 1, 3, groups=dim, with_bn=False, **dd)
        self.act_name, self.act = act, make_act(act)
        self.fuse = Fusion(op, channel_dim=1)  # NCHW
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.dwconv(x)
        mlp = None
        # The kernels are Python (autograd Functions, torch.compile): TorchScript compiles the plain line alone.
        if not torch.jit.is_scripting():
            if self.kernels.fused_mlp or self.kernels.compile_branches:
                mlp = self.g.norm(self.accelerated_mlp(x))
        x = self.g(self.fuse(self.act(self.f1(x)), self.f2(x))) if mlp is None else mlp
        x = self.dwconv2(x)
        return shortcut + self.drop_path(x)

    def accelerated_mlp(self, x: torch.Tensor) -> torch.Tensor:
        """``g.conv(op(act(f1(x)), f2(x)))`` through the kernels ``accelerate()`` chose: the fused MLP
        where it applies (the op's and activation's kernel codes from the registry), else the compiled
        or plain branch merge."""
        if self.kernels.fused_mlp:
            y = fused_mlp(x, self.f1.conv, self.f2.conv, self.g.conv, act_kernel_code(self.act_name),
                          self.fuse.kernel_code)
            if y is not None:
                return y
        return self.g.conv(act_then_op(self.act_name, self.act, self.fuse, self.f1(x), self.f2(x),
                                       compiled=self.kernels.compile_branches))


class Stem(nn.Sequential):
    """3x3 stride-2 ConvBN, then the activation (timm's tree: ``stem.0.conv``, ``stem.0.bn``, ``stem.1``).
    After ``accelerate(model, fast_batchnorm=True)`` the BatchNorm and a ReLU/ReLU6 after it run as one
    kernel."""

    kernels = PLAIN  # set by starnet.accelerate() (the class default: plain)

    def __init__(self, in_chans: int, dim: int, act: str, device=None, dtype=None):
        super().__init__(ConvBN(in_chans, dim, 3, 2, 1, device=device, dtype=dtype), make_act(act))
        self.act_name = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():  # the kernel is an autograd Function: TorchScript compiles the loop alone
            conv_bn = self[0]
            if (self.kernels.fast_batchnorm and isinstance(conv_bn, ConvBN)
                    and "bn" in conv_bn._modules):  # not yet folded for deployment
                x = conv_bn.conv(x)
                y = fast_batch_norm(conv_bn.bn, x, act_kernel_code(self.act_name))  # None: not fused
                return self[1](conv_bn.bn(x)) if y is None else y
        for layer in self:  # nn.Sequential.forward (TorchScript has no super())
            x = layer(x)
        return x


class StarNet(TimmApiDefaults, nn.Module):
    stem_dim = 32

    def __init__(self, base_dim: int = 32, depths: Sequence[int] = (3, 3, 12, 5), mlp_ratio: int = 4,
                 op: Union[str, Sequence[str]] = "star", act: str = "relu6", num_classes: int = 1000,
                 in_chans: int = 3, drop_path: float = 0.0, init: str = "official", drop_rate: float = 0.0,
                 global_pool: str = "avg", device=None, dtype=None):
        dd = {"device": device, "dtype": dtype}  # where the parameters are made (timm: create_model(device=...))
        super().__init__()
        check_positive_int("width", base_dim)
        check_positive_int("in_chans", in_chans)
        depths = list(depths)
        if not depths:
            raise ValueError("StarNet needs at least one stage (depths is empty)")
        for d in depths:
            check_positive_int("depth of each stage", d)
        ops = [op] * len(depths) if isinstance(op, str) else list(op)
        if len(ops) != len(depths):
            raise ValueError(f"op has {len(ops)} entries but StarNet has {len(depths)} stages")
        if init not in INITS:
            raise ValueError(f"unknown init '{init}'; valid: {', '.join(INITS)}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.ops = ops

        self.stem = Stem(in_chans, self.stem_dim, act, **dd)
        dpr = drop_path_rates(drop_path, sum(depths))
        stages, prev, cur = [], self.stem_dim, 0
        self.feature_info: List[Dict[str, Any]] = []  # timm's: one entry per stage
        for i, (depth, stage_op) in enumerate(zip(depths, ops)):
            dim = base_dim * 2 ** i
            blocks = [StarBlock(dim, mlp_ratio, stage_op, act, dpr[cur + j], **dd) for j in range(depth)]
            stages.append(nn.Sequential(ConvBN(prev, dim, 3, 2, 1, **dd), *blocks))
            self.feature_info.append(dict(num_chs=dim, reduction=_stage_stride(i), module=f"stages.{i}"))
            prev, cur = dim, cur + depth
        self.stages = nn.Sequential(*stages)
        self.num_features = self.head_hidden_size = prev
        self.norm = BatchNorm2d(prev, **dd)
        self.global_pool = GlobalPool(global_pool)  # no parameters: the state dict is timm's
        self.head = nn.Linear(prev, num_classes, **dd) if num_classes > 0 else nn.Identity()
        self._init_weights(init)

    def _init_weights(self, init: str) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear) or (init == "timm" and isinstance(m, nn.Conv2d)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _pickled_feature_info(self) -> List[Dict[str, Any]]:
        # Read from the module tree: each stage opens with its downsampling ConvBN (a Conv2d once folded).
        return [dict(num_chs=_out_channels(stage[0]), reduction=_stage_stride(i), module=f"stages.{i}")
                for i, stage in enumerate(self.stages)]

    # timm's model API (``timm.create_model("starbench_starnet_s1")``, registered in ``timm_models.py``).
    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        return set()

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> Dict[str, Any]:
        return dict(stem=r"^stem\.\d+",
                    blocks=[(r"^stages\.(\d+)" if coarse else r"^stages\.(\d+)\.(\d+)", None),
                            (r"norm", (99999,))])

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """A new head for ``num_classes`` (0: none, ``forward`` gives the pooled features); ``global_pool``
        ``""`` makes ``forward`` return the unpooled map."""
        self.num_classes = num_classes
        if global_pool is not None:
            self.global_pool = GlobalPool(global_pool)
        ref = self.norm.weight if isinstance(self.norm, nn.BatchNorm2d) else next(self.parameters())
        self.head = (nn.Linear(self.head_hidden_size, num_classes).to(ref.device, ref.dtype) if num_classes > 0
                     else nn.Identity())
        self.head.train(self.training)

    def forward_intermediates(self, x: torch.Tensor, indices: Optional[Union[int, List[int]]] = None,
                              norm: bool = False, stop_early: bool = False, output_fmt: str = "NCHW",
                              intermediates_only: bool = False):
        """timm >= 1.0: the outputs of the stages in ``indices`` (None: all, an int n: the last n), with the
        final norm on the last stage's if ``norm``; returns them alone (``intermediates_only``) or
        ``(forward_features(x), intermediates)``."""
        if output_fmt != "NCHW":
            raise ValueError("StarNet's intermediates are NCHW")
        taken, max_index = take_indices(len(self.stages), indices)
        last = len(self.stages) - 1
        stages = self.stages if torch.jit.is_scripting() or not stop_early else self.stages[:max_index + 1]
        intermediates = []
        x = self.stem(x)
        feat_idx = 0
        for feat_idx, stage in enumerate(stages):
            x = stage(x)
            if feat_idx in taken:
                intermediates.append(self.norm(x) if norm and feat_idx == last else x)
        if intermediates_only:
            return intermediates
        if feat_idx == last:
            x = self.norm(x)
        return x, intermediates

    def prune_intermediate_layers(self, indices: Union[int, List[int]] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> List[int]:
        """Drop the stages after the last of ``indices`` (and the norm/head that no longer fit)."""
        taken, max_index = take_indices(len(self.stages), indices)
        prune_end = max_index < len(self.stages) - 1
        if prune_norm or prune_end:
            self.norm = nn.Identity()
        self.stages = self.stages[:max_index + 1]
        if prune_end:
            self.num_features = self.head_hidden_size = self.feature_info[max_index]["num_chs"]
        if prune_head or prune_end:
            self.reset_classifier(0, "")
        return taken

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The final map after the last norm, (B, num_features, H/32, W/32)."""
        return self.norm(self.stages(self.stem(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        if self.drop_rate > 0.0:
            x = nn.functional.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reparameterize(self, merge_branches: bool = True) -> "StarNet":
        """In place, for inference: BatchNorms folded into convs and the head, f1|f2 merged unless
        ``merge_branches=False`` (the module doc). Returns ``self``, in eval mode."""
        self.eval()
        self.stem[0] = fold_conv_bn(self.stem[0])
        for stage in self.stages:
            for i, layer in enumerate(stage):
                stage[i] = (DeployStarBlock(layer, merge_branches) if isinstance(layer, StarBlock)
                            else fold_conv_bn(layer))
        if (isinstance(self.head, nn.Linear) and isinstance(self.norm, nn.BatchNorm2d)  # not yet folded
                and self.global_pool.pool_type == "avg"):  # an affine map commutes with the mean, not the max
            self.head = fold_norm_into_linear(self.norm, self.head)
            self.norm = nn.Identity()
        return self


def _stage_stride(i: int) -> int:
    """Output stride of stage ``i``: the stem halves the input, then each stage's downsampler."""
    return 2 ** (i + 2)


def _out_channels(layer: nn.Module) -> int:
    return layer.out_channels if isinstance(layer, nn.Conv2d) else layer.conv.out_channels


class DeployStarBlock(nn.Module):
    """StarBlock after reparameterization: dwconv -> f (f1|f2 merged) -> op(act(x1), x2) -> g -> dwconv2.

    ``merge_branches=False`` keeps f1 and f2 apart: ONNX Runtime fuses each conv with the activation
    that follows it, which it cannot do across the split of a merged conv (measured: merged is slower
    there, faster in PyTorch eager).

    With ``op="sum"`` the f2 branch is linear all the way to the output: ``g(act(f1 y) + f2 y) =
    g(act(f1 y)) + (Wg W2) y + Wg b2``, so f2 (C -> 4C) and its half of g collapse into one C -> C conv
    ``lin``: 9C^2 instead of 12C^2 multiply-adds per pixel. (Merged, ``lin`` rides along as C extra
    output channels of f1.) The star op has no such fold: its second branch is multiplied in."""

    def __init__(self, block: StarBlock, merge_branches: bool = True):
        super().__init__()
        self.dwconv = fold_conv_bn(block.dwconv)
        f1, f2 = block.f1.conv, block.f2.conv
        self.hidden = f1.out_channels
        self.act, self.fuse = block.act, block.fuse
        self.g = fold_conv_bn(block.g)
        self.dwconv2 = fold_conv_bn(block.dwconv2)
        self.linear_branch = block.fuse.op == "sum"
        if self.linear_branch:
            second = nn.Conv2d(f2.in_channels, self.g.out_channels, 1).to(f2.weight.device, f2.weight.dtype)
            with torch.no_grad():
                weight, bias = fold_linear_branch(self.g.weight.flatten(1), f2.weight.flatten(1), f2.bias)
                second.weight.copy_(weight.view_as(second.weight))
                second.bias.copy_(bias)
        else:
            second = f2
        if merge_branches:
            self.f = nn.Conv2d(f1.in_channels, self.hidden + second.out_channels, 1).to(f1.weight.device,
                                                                                         f1.weight.dtype)
            with torch.no_grad():
                self.f.weight.copy_(torch.cat([f1.weight, second.weight]))
                self.f.bias.copy_(torch.cat([f1.bias, second.bias]))
        else:
            self.f1, self.f2 = f1, second

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x)
        if hasattr(self, "f"):
            x1, x2 = self.f(y).split([self.hidden, self.f.out_channels - self.hidden], dim=1)
        else:
            x1, x2 = self.f1(y), self.f2(y)
        if self.linear_branch:  # x2 is already g's share of the second branch
            return x + self.dwconv2(self.g(self.act(x1)) + x2)
        return x + self.dwconv2(self.g(self.fuse(self.act(x1), x2)))


def create_starnet(variant: str = "s1", op: Union[str, Sequence[str]] = "star", act: str = "relu6",
                   num_classes: int = 1000, in_chans: int = 3, drop_path: float = 0.0,
                   width: int = None, depths: Sequence[int] = None, init: str = "official",
                   **kwargs: Any) -> StarNet:
    """Build a paper variant (``s050 s100 s150 s1 s2 s3 s4``); ``width``/``depths`` override its
    base width and per-stage depths; ``kwargs`` (``drop_rate``, ``global_pool``) go to ``StarNet``. The same
    model as ``timm.create_model(f"starbench_starnet_{variant}", ...)`` (``starnet/timm_models.py``)."""
    return StarNet(**variant_args(variant, width, depths), op=op, act=act, num_classes=num_classes,
                   in_chans=in_chans, drop_path=drop_path, init=init, **kwargs)


def variant_args(variant: str, width: Optional[int] = None, depths: Optional[Sequence[int]] = None) -> Dict[str, Any]:
    """A paper variant's ``base_dim``, ``depths`` and ``mlp_ratio``, with ``width``/``depths`` overriding the first
    two: the one place a variant is looked up (``create_starnet`` and timm's ``starbench_starnet_*``). A depths
    override has one block count per stage of the variant (4), not fewer or more."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown StarNet variant '{variant}'; valid: {', '.join(VARIANTS)}")
    spec = VARIANTS[variant]
    if depths is not None:
        if isinstance(depths, (int, str)) or not hasattr(depths, "__len__"):
            raise ValueError(f"StarNet depth is one block count per stage, e.g. depth=[2,2,8,3]; got {depths!r}")
        if len(depths) != len(spec.depths):
            raise ValueError(f"StarNet has {len(spec.depths)} stages: depth needs one block count per stage, e.g. "
                             f"depth=[{','.join(map(str, spec.depths))}]; got {list(depths)!r} "
                             f"({len(depths)} entries)")
    return dict(base_dim=spec.base_dim if width is None else width,
                depths=tuple(spec.depths if depths is None else depths), mlp_ratio=spec.mlp_ratio)
