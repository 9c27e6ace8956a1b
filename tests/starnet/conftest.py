"""Fixtures of the StarNet and kernel tests (tests/conftest.py keeps those of the whole suite)."""
import copy

import pytest
import torch
from torch import nn

from starnet import accelerate, create_starnet


@pytest.fixture
def require_kernel():
    """``require_kernel(extension, what)``: fail the test where an opt-in C++ kernel did not build (CI
    machines have a compiler; elsewhere the fallback is tested by tests/starnet/kernels/test_build.py)."""
    def check(extension, what: str) -> None:
        if extension() is None:
            pytest.fail(f"the {what} kernel did not build (a C++ compiler is required where tests run)")
    return check


@pytest.fixture
def starnet_step_pair():
    """``starnet_step_pair(variant, op, act, size=64, **kernels)``: one training step of a channels_last
    StarNet after ``accelerate(model, **kernels)``, and of an identical plain copy: returns (loss,
    reference loss, model, reference model), gradients in ``.grad``."""
    def step_pair(variant: str, op: str, act: str, size: int = 64, **kernels):
        torch.manual_seed(0)
        model = create_starnet(variant, op=op, act=act, num_classes=10).train().to(memory_format=torch.channels_last)
        other = copy.deepcopy(model)
        accelerate(model, **kernels)
        x = torch.randn(4, 3, size, size).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (4,))
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        ref = nn.functional.cross_entropy(other(x), y)
        ref.backward()
        return loss, ref, model, other
    return step_pair
