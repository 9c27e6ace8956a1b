"""Deploy-time form of StarNet and DemoNet: the same function with fewer, larger ops.

``reparameterize(model)`` rewrites a trained model in place for inference (eval mode only):

StarNet
- every Conv+BatchNorm pair (stem, downsamplers, each block's first 7x7 depthwise conv and ``g``)
  becomes one Conv2d with the BatchNorm folded into its weight and bias;
- each block's two branch convs ``f1`` and ``f2`` (both 1x1 on the same input) become one conv with
  twice the output channels, split after it;
- with the sum op, f2 and its share of g fold into one C -> C conv (the branch is linear; see
  ``DeployStarBlock``): 20% fewer parameters and block-MLP FLOPs of 9C^2 instead of 12C^2 per pixel;
- the final BatchNorm folds into the classifier (a per-channel affine map commutes with the mean pool).

DemoNet (``demonet.DeployDemoBlock``)
- each block's layer scale ``gamma`` folds into its ``g`` Linear;
- with the sum op, the second half of f and its share of g fold into d more outputs of f, as above.

Outputs equal the training form's up to float rounding (tested to 1e-4 relative for every
variant and op). The result is plain torch modules, so it exports to ONNX and traces like any model.
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import ConvBN


def _bn_affine(bn: nn.BatchNorm2d):
    """Eval-mode BatchNorm as ``x * scale + shift`` per channel."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """One Conv2d computing ``bn(conv(x))`` with ``bn``'s running statistics."""
    scale, shift = _bn_affine(bn)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True).to(conv.weight.device, conv.weight.dtype)
    fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    fused.bias.copy_(shift if conv.bias is None else conv.bias * scale + shift)
    return fused


def _fold(module: nn.Module) -> nn.Module:
    """A ConvBN as one Conv2d (its conv alone when it has no BatchNorm)."""
    if isinstance(module, ConvBN):
        return fuse_conv_bn(module.conv, module.bn) if hasattr(module, "bn") else module.conv
    return module


def fold_linear_branch(g_weight: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor):
    """Sum blocks: ``g(act(x1) + x2)`` with ``x2 = W2 y + b2`` equals ``g(act(x1)) + (Wg W2) y + Wg b2``.
    Returns the weight ``Wg W2`` (out x in) and bias ``Wg b2`` of that second-branch map, for StarNet
    (1x1 convs, flattened) and DemoNet (Linears) alike; g keeps its own bias."""
    return g_weight @ w2, g_weight @ b2


class DeployStarBlock(nn.Module):
    """StarBlock after reparameterization: dwconv -> f (f1|f2 merged) -> op(act(x1), x2) -> g -> dwconv2.

    ``merge_branches=False`` keeps f1 and f2 apart: ONNX Runtime fuses each conv with the activation
    that follows it, which it cannot do across the split of a merged conv (measured: merged is slower
    there, faster in PyTorch eager).

    With ``op="sum"`` the f2 branch is linear all the way to the output: ``g(act(f1 y) + f2 y) =
    g(act(f1 y)) + (Wg W2) y + Wg b2``, so f2 (C -> 4C) and its half of g collapse into one C -> C conv
    ``lin``: 9C^2 instead of 12C^2 multiply-adds per pixel. (Merged, ``lin`` rides along as C extra
    output channels of f1.) The star op has no such fold: its second branch is multiplied in."""

    def __init__(self, block: nn.Module, merge_branches: bool = True):
        super().__init__()
        self.dwconv = _fold(block.dwconv)
        f1, f2 = block.f1.conv, block.f2.conv
        self.hidden = f1.out_channels
        self.act, self.fuse = block.act, block.fuse
        self.g = _fold(block.g)
        self.dwconv2 = _fold(block.dwconv2)
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


@torch.no_grad()
def _fold_norm_into_head(norm: nn.BatchNorm2d, head: nn.Linear) -> nn.Linear:
    """The head after the final BatchNorm: a per-channel affine map commutes with the mean pool."""
    scale, shift = _bn_affine(norm)
    fused = nn.Linear(head.in_features, head.out_features).to(head.weight.device, head.weight.dtype)
    fused.weight.copy_(head.weight * scale)
    fused.bias.copy_(head.bias + head.weight @ shift)
    return fused


def reparameterize_starnet(model: nn.Module, merge_branches: bool = True) -> nn.Module:
    """``StarNet.reparameterize``."""
    from .model import StarBlock
    model.eval()
    model.stem[0] = _fold(model.stem[0])
    for stage in model.stages:
        for i, layer in enumerate(stage):
            stage[i] = DeployStarBlock(layer, merge_branches) if isinstance(layer, StarBlock) else _fold(layer)
    if isinstance(model.head, nn.Linear) and isinstance(model.norm, nn.BatchNorm2d):  # not yet folded
        model.head = _fold_norm_into_head(model.norm, model.head)
        model.norm = nn.Identity()
    return model


def reparameterize(model: nn.Module, **options) -> nn.Module:
    """Rewrite a StarNet or DemoNet in place into its deploy form (see the module doc); returns it.
    A model already in deploy form is returned as it is. Inference only: the model is put in eval mode
    (where drop path is an identity). ``options``: StarNet's ``merge_branches`` (default True)."""
    if not hasattr(model, "reparameterize"):
        raise TypeError(f"reparameterize() takes a StarNet or DemoNet, not {type(model).__name__}")
    return model.reparameterize(**options)
