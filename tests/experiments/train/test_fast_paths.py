import logging

import torch
from omegaconf import OmegaConf

from experiments.train.fast_paths import KERNEL_SWITCHES, keep_freed_memory, kernel_switches, optimizer_fast_path
from tests.conftest import compose_cfg

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_kernel_switches_default_on_and_one_key_for_plain(monkeypatch, caplog):
    tcfg = compose_cfg().trainer
    assert tcfg.fast_paths and all(tcfg[k] for k in KERNEL_SWITCHES)  # fast by default
    monkeypatch.setenv("CXX", "c++")
    from starnet.kernels import _build
    monkeypatch.setattr(_build.shutil, "which", lambda name: "/usr/bin/" + name)
    assert kernel_switches(tcfg, CPU) == dict.fromkeys(KERNEL_SWITCHES, True)
    assert not any(kernel_switches(tcfg, CUDA).values())                               # CUDA: plain
    assert not any(kernel_switches(compose_cfg("trainer.fast_paths=false").trainer, CPU).values())
    monkeypatch.setattr(_build.shutil, "which", lambda name: None)                    # no compiler
    with caplog.at_level(logging.WARNING, logger="starbench"):
        assert not any(kernel_switches(tcfg, CPU).values())
    assert len([r for r in caplog.records if "no C++ compiler" in r.getMessage()]) == 1


def test_optimizer_fast_path_is_fused_adamw_on_cpu_and_off_elsewhere():
    cfg = lambda **kw: OmegaConf.create({"optimizer": "adamw", "fast_paths": True, **kw})  # noqa: E731
    assert optimizer_fast_path(cfg(), CPU) == {"fused": True}
    assert optimizer_fast_path(cfg(optimizer="lamb"), CPU) == {"foreach": True}  # no fused step in torch
    assert optimizer_fast_path(cfg(fast_paths=False), CPU) == {} and optimizer_fast_path(cfg(), CUDA) == {}


def test_freed_memory_is_kept_on_cpu_unless_either_key_says_no(monkeypatch):
    tcfg = compose_cfg().trainer
    monkeypatch.setattr("starnet.kernels._build.shutil.which", lambda name: None)  # needs no compiler
    assert keep_freed_memory(tcfg, CPU) and not keep_freed_memory(tcfg, CUDA)
    assert not keep_freed_memory(compose_cfg("trainer.fast_paths=false").trainer, CPU)
    assert not keep_freed_memory(compose_cfg("trainer.reuse_freed_memory=false").trainer, CPU)
