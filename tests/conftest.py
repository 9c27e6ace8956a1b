import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
sys.path.insert(0, str(ROOT))

# Tests never talk to W&B's servers and never prompt.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


def compose_cfg(*overrides: str):
    """The config `python run.py <overrides>` would get (without the hydra node)."""
    from hydra import compose, initialize_config_dir
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides))


TINY = ("data=synthetic", "width=8", "depth=2", "trainer.epochs=2", "trainer.batch_size=64",
        "trainer.eval_batch_size=256", "data.train_size=256", "data.val_size=128", "logger=none")


@pytest.fixture
def tiny_cfg():
    def make(*extra: str):
        return compose_cfg(*TINY, *extra)
    return make


def kernel_switched_on(extension, use, what: str):
    """Body of a fixture that turns an opt-in C++ kernel on for one test (and off after it).
    A kernel that does not build fails the test: CI machines have a compiler."""
    if extension() is None:
        pytest.fail(f"the {what} kernel did not build (a C++ compiler is required where tests run)")
    use(True)
    yield
    use(False)


def starnet_step_pair(variant: str, op: str, act: str, switch_off, size: int = 64):
    """One training step of a channels_last StarNet with a kernel switched on, and of an identical copy
    after ``switch_off()``: returns (loss, reference loss, model, reference model), gradients in ``.grad``."""
    import copy

    import torch
    from torch import nn

    from starnet import create_starnet
    torch.manual_seed(0)
    model = create_starnet(variant, op=op, act=act, num_classes=10).train().to(memory_format=torch.channels_last)
    other = copy.deepcopy(model)
    x = torch.randn(4, 3, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (4,))
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    switch_off()
    ref = nn.functional.cross_entropy(other(x), y)
    ref.backward()
    return loss, ref, model, other
