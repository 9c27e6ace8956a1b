"""DemoNet: the isotropic network of "Rewrite the Stars" sec. 3.4, with a pluggable fusion op.

Block for block the official ``imagenet/demonet.py``: patch-embedding conv stem, then ``depth``
blocks of LayerNorm -> 7x7 depthwise conv -> Linear d->6d split into halves -> op(act(x1), x2)
-> Linear 3d->d -> layer scale -> drop path -> residual; head: mean pool, LayerNorm, Linear.
Parameter count: 9d^2 + 60d per block, the same as the official model for every width/depth. Every op of
``starnet.ops`` has that count: a preset (``bilinear``, ``swiglu``, ...) names the op and the activation, and an op
that concatenates the branches (``concat``) gets the branch widths that keep it (``starnet.ops.branch_widths``).

``PointDemoNet`` is the paper's 2-D toy (sec. 3.4, Fig. 2): the same block on vectors, without
the depthwise conv and layer scale, as in the official ``2D_visual/demonet_2d.py``.
"""
# No ``from __future__ import annotations``: torch.fx copies the model's forward annotations into the code it
# generates (timm's fx feature extraction), and TorchScript cannot compile that code from string annotations.
from typing import Any, Dict, List, Optional, Union

import torch
from torch import nn

from starnet.fold import fold_linear_branch
from starnet.kernels.accelerate import PLAIN
from starnet.kernels.demo_block import fused_demo_block
from starnet.kernels.dwconv import DepthwiseConv2d
from starnet.layers import DropPath, GlobalPool, TimmApiDefaults, drop_path_rates, take_indices
from starnet.ops import (Fusion, act_then_op, block_act_kernel_code, branch_merge, branch_widths, check_one_op,
                         check_positive_int, fusion_width, make_act)


class DemoBlock(nn.Module):
    """Channels-last block: input and output are (B, H, W, C)."""

    kernels = PLAIN  # set by starnet.accelerate(): fused_block, compile_branches (dwconv has its own: fast_dwconv)

    def __init__(self, dim: int, op: str = "star", act: str = "gelu", drop_path: float = 0.0,
                 layer_scale: float = 1e-6, device=None, dtype=None):
        dd = {"device": device, "dtype": dtype}
        super().__init__()
        op, act = branch_merge(op, act)  # a preset (bilinear, swiglu, ...) is an op and its activation
        h1, h2 = branch_widths(op, dim, 3 * dim)  # 3d each, but for an op that concatenates them
        self.norm = nn.LayerNorm(dim, **dd)
        self.dwconv = DepthwiseConv2d(dim, 7, **dd)
        self.f = nn.Linear(dim, h1 + h2, **dd)
        self.act_name, self.act = act, make_act(act)
        self.fuse = Fusion(op)  # channels last
        self.g = nn.Linear(fusion_width(op, h1, h2), dim, **dd)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale, **dd)) if layer_scale > 0 else None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The kernels are Python (autograd Functions, torch.compile): TorchScript compiles the plain lines alone.
        if not torch.jit.is_scripting():
            if self.kernels.fused_block and isinstance(self.drop_path, nn.Identity):  # the lines below as one kernel
                y = fused_demo_block(x, self.norm, self.dwconv, self.f, self.g, self.gamma,
                                     block_act_kernel_code(self.act_name), self.fuse.block_kernel_code)
                if y is not None:  # None: the kernel does not apply here (eval, another device, op or activation)
                    return y
        shortcut = x
        x = self.norm(x)
        # A permuted contiguous NHWC tensor is a channels_last NCHW tensor: no copy, fast conv path.
        x = self.dwconv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        x1, x2 = split_branches(self.f(x))
        merged = None
        if not torch.jit.is_scripting():
            if self.kernels.compile_branches:
                merged = act_then_op(self.act_name, self.act, self.fuse, x1, x2, compiled=True)
        x = self.g(self.fuse(self.act(x1), x2) if merged is None else merged)
        if self.gamma is not None:
            x = self.gamma * x
        return shortcut + self.drop_path(x)


class DemoNet(TimmApiDefaults, nn.Module):
    """timm's model API (``timm.create_model("starbench_demonet", ...)``, registered in ``timm_models.py``):
    ``forward_features`` gives the blocks' output as an NCHW map (B, width, H/patch, W/patch); ``forward_head``
    pools it, applies the LayerNorm (the paper's head norm, after the pool) and the classifier
    (``pre_logits=True``: the pooled, normalised features)."""

    def __init__(self, width: int = 192, depth: int = 12, op: str = "star", act: str = "gelu",
                 num_classes: int = 1000, in_chans: int = 3, patch_size: int = 16, drop_path: float = 0.0,
                 layer_scale: float = 1e-6, drop_rate: float = 0.0, global_pool: str = "avg", device=None,
                 dtype=None):
        dd = {"device": device, "dtype": dtype}  # where the parameters are made (timm: create_model(device=...))
        super().__init__()
        check_positive_int("width", width)
        check_positive_int("depth", depth)
        check_one_op("DemoNet", op)
        check_positive_int("in_chans", in_chans)
        check_positive_int("patch_size", patch_size)
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = width
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.feature_info: List[Dict[str, Any]] = [dict(num_chs=width, reduction=patch_size, module=f"blocks.{i}")
                                                   for i in range(depth)]
        self.stem = nn.Conv2d(in_chans, width, kernel_size=patch_size, stride=patch_size, **dd)
        self.blocks = nn.Sequential(*[DemoBlock(width, op, act, p, layer_scale, **dd)
                                      for p in drop_path_rates(drop_path, depth)])
        self.norm = nn.LayerNorm(width, **dd)
        self.global_pool = GlobalPool(global_pool)  # no parameters
        self.head = nn.Linear(width, num_classes, **dd) if num_classes > 0 else nn.Identity()
        self.apply(_init_trunc_normal)

    def _pickled_feature_info(self) -> List[Dict[str, Any]]:
        return [dict(num_chs=self.num_features, reduction=self.stem.stride[0], module=f"blocks.{i}")
                for i in range(len(self.blocks))]

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        return set()

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> Dict[str, Any]:
        return dict(stem=r"^stem", blocks=[(r"^blocks\.(\d+)", None), (r"^norm", (99999,))])

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """A new head for ``num_classes`` (0: none); ``global_pool`` ``""`` makes ``forward`` return the map
        (with the LayerNorm applied per position)."""
        self.num_classes = num_classes
        if global_pool is not None:
            self.global_pool = GlobalPool(global_pool)
        ref = self.stem.weight
        self.head = (nn.Linear(self.head_hidden_size, num_classes).to(ref.device, ref.dtype) if num_classes > 0
                     else nn.Identity())
        self.head.train(self.training)

    def _norm_map(self, x: torch.Tensor) -> torch.Tensor:
        """The head LayerNorm over the channels of an NCHW map (``norm`` is ``Identity`` once pruned)."""
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def forward_intermediates(self, x: torch.Tensor, indices: Optional[Union[int, List[int]]] = None,
                              norm: bool = False, stop_early: bool = False, output_fmt: str = "NCHW",
                              intermediates_only: bool = False):
        """timm >= 1.0: the outputs of the blocks in ``indices`` (None: all, an int n: the last n) as NCHW maps
        (``norm``: with the head LayerNorm per position); returns them alone (``intermediates_only``) or
        ``(forward_features(x), intermediates)``."""
        if output_fmt not in ("NCHW", "NHWC"):
            raise ValueError(f"output_fmt must be NCHW or NHWC, got {output_fmt}")
        taken, max_index = take_indices(len(self.blocks), indices)
        blocks = self.blocks if torch.jit.is_scripting() or not stop_early else self.blocks[:max_index + 1]
        intermediates = []
        x = self.stem(x).permute(0, 2, 3, 1)
        for i, block in enumerate(blocks):
            x = block(x)
            if i in taken:
                y = self.norm(x) if norm else x
                intermediates.append(y if output_fmt == "NHWC" else y.permute(0, 3, 1, 2))
        if intermediates_only:
            return intermediates
        return x.permute(0, 3, 1, 2), intermediates

    def prune_intermediate_layers(self, indices: Union[int, List[int]] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> List[int]:
        """Drop the blocks after the last of ``indices`` (and the head norm/classifier if asked)."""
        taken, max_index = take_indices(len(self.blocks), indices)
        self.blocks = self.blocks[:max_index + 1]
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, "")
        return taken

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The blocks' output, an NCHW map (B, width, H/patch, W/patch) (a view of the channels-last blocks')."""
        return self.blocks(self.stem(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.global_pool.is_identity():
            x = self._norm_map(x)
        else:
            x = self.norm(self.global_pool(x))
        if self.drop_rate > 0.0:
            x = nn.functional.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reparameterize(self) -> "DemoNet":
        """In place, for inference: every block becomes a ``DeployDemoBlock``. Returns ``self``, in eval mode."""
        self.eval()
        self.blocks = nn.Sequential(*[block if isinstance(block, DeployDemoBlock) else DeployDemoBlock(block)
                                      for block in self.blocks])
        return self


class DeployDemoBlock(nn.Module):
    """DemoBlock after reparameterization (inference only): the layer scale folds into ``g``; in sum
    blocks the second branch, linear up to the output (``g(act(x1) + x2)`` with ``x2 = W2 x + b2``),
    folds into ``g W2`` (``starnet.fold.fold_linear_branch``), so f is d -> 4d instead of d -> 6d
    (7d^2 instead of 9d^2 per token, as StarNet's deploy form)."""

    @torch.no_grad()
    def __init__(self, block: DemoBlock):
        super().__init__()
        self.norm, self.dwconv, self.act, self.fuse = block.norm, block.dwconv, block.act, block.fuse
        g, f = block.g, block.f
        self.g = nn.Linear(g.in_features, g.out_features).to(g.weight.device, g.weight.dtype)
        scale = block.gamma if block.gamma is not None else torch.ones_like(g.bias)
        self.g.weight.copy_(g.weight * scale.view(-1, 1))
        self.g.bias.copy_(g.bias * scale)
        self.linear_branch = block.fuse.op == "sum"
        if self.linear_branch:
            hidden = g.in_features
            (w1, w2), (b1, b2) = f.weight.split(hidden), f.bias.split(hidden)
            weight, bias = fold_linear_branch(self.g.weight, w2, b2)
            self.f = nn.Linear(f.in_features, hidden + g.out_features).to(w1.device, w1.dtype)
            self.f.weight.copy_(torch.cat([w1, weight]))
            self.f.bias.copy_(torch.cat([b1, bias]))
        else:
            self.f = f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(x)
        y = self.dwconv(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        if self.linear_branch:  # f = [f1; g W2]: x2 is already g's share of the second branch
            x1, x2 = self.f(y).split([self.g.in_features, self.g.out_features], dim=-1)
            return x + self.g(self.act(x1)) + x2
        x1, x2 = split_branches(self.f(y))
        return x + self.g(self.fuse(self.act(x1), x2))


class PointBlock(nn.Module):
    def __init__(self, dim: int, op: str, act: str):
        super().__init__()
        op, act = branch_merge(op, act)
        h1, h2 = branch_widths(op, dim, 3 * dim)
        self.norm = nn.LayerNorm(dim)
        self.f = nn.Linear(dim, h1 + h2)
        self.act = make_act(act)
        self.fuse = Fusion(op)
        self.g = nn.Linear(fusion_width(op, h1, h2), dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = split_branches(self.f(self.norm(x)))
        return x + self.g(self.fuse(self.act(x1), x2))


class PointDemoNet(nn.Module):
    """DemoNet for points in R^in_features (paper: width 100, depth 4, ReLU, on 2-D moons)."""

    def __init__(self, width: int = 100, depth: int = 4, op: str = "star", act: str = "relu",
                 num_classes: int = 2, in_features: int = 2):
        super().__init__()
        check_positive_int("width", width)
        check_positive_int("depth", depth)
        check_one_op("DemoNet", op)
        self.num_classes = num_classes
        self.stem = nn.Linear(in_features, width)
        self.blocks = nn.Sequential(*[PointBlock(width, op, act) for _ in range(depth)])
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)
        self.apply(_init_trunc_normal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.blocks(self.stem(x))))


def split_branches(h: torch.Tensor):
    """f's output -> the branches x1, x2: its two halves (x1 one channel wider where f's width is odd, as
    ``starnet.ops.branch_widths`` may give an op that concatenates them)."""
    return h.tensor_split(2, dim=-1)


def _init_trunc_normal(m: nn.Module) -> None:
    # The official DemoNet init: trunc_normal(.02) on every conv and linear weight, zero bias.
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.trunc_normal_(m.weight, std=0.02)
        nn.init.zeros_(m.bias)
