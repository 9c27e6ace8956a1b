"""Folding for the deploy forms of StarNet and DemoNet: the same function with fewer, larger ops.

``reparameterize(model)`` rewrites a trained model in place for inference (eval mode only), by the
model's own ``reparameterize()``; the deploy blocks live next to their models (``starnet.model.
DeployStarBlock``, ``demonet.DeployDemoBlock``) and build on the helpers here:

- ``fuse_conv_bn`` / ``fold_conv_bn``: a Conv+BatchNorm pair as one Conv2d, the BatchNorm folded into
  its weight and bias;
- ``fold_linear_branch``: with the sum op the second branch is linear up to the block's output, so it
  and its share of ``g`` fold into one map (``g(act(x1) + W2 y + b2) = g(act(x1)) + (Wg W2) y + Wg b2``);
- ``fold_norm_into_linear``: a final BatchNorm into the classifier (a per-channel affine map commutes
  with the mean pool).

Outputs equal the training form's up to float rounding (tested to 1e-4 relative for every variant and
op). The result is plain torch modules, so it exports to ONNX and traces like any model.
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


def fold_conv_bn(module: nn.Module) -> nn.Module:
    """A ConvBN as one Conv2d (its conv alone when it has no BatchNorm); any other module unchanged."""
    if isinstance(module, ConvBN):
        return fuse_conv_bn(module.conv, module.bn) if hasattr(module, "bn") else module.conv
    return module


def fold_linear_branch(g_weight: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor):
    """Sum blocks: ``g(act(x1) + x2)`` with ``x2 = W2 y + b2`` equals ``g(act(x1)) + (Wg W2) y + Wg b2``.
    Returns the weight ``Wg W2`` (out x in) and bias ``Wg b2`` of that second-branch map, for StarNet
    (1x1 convs, flattened) and DemoNet (Linears) alike; g keeps its own bias."""
    return g_weight @ w2, g_weight @ b2


@torch.no_grad()
def fold_norm_into_linear(norm: nn.BatchNorm2d, head: nn.Linear) -> nn.Linear:
    """The head after the final BatchNorm: a per-channel affine map commutes with the mean pool."""
    scale, shift = _bn_affine(norm)
    fused = nn.Linear(head.in_features, head.out_features).to(head.weight.device, head.weight.dtype)
    fused.weight.copy_(head.weight * scale)
    fused.bias.copy_(head.bias + head.weight @ shift)
    return fused


def reparameterize(model: nn.Module, **options) -> nn.Module:
    """Rewrite a StarNet or DemoNet in place into its deploy form (see the module doc); returns it.
    A model already in deploy form is returned as it is. Inference only: the model is put in eval mode
    (where drop path is an identity). ``options``: StarNet's ``merge_branches`` (default True)."""
    if not hasattr(model, "reparameterize"):
        raise TypeError(f"reparameterize() takes a StarNet or DemoNet, not {type(model).__name__}")
    return model.reparameterize(**options)
