import pytest
import torch

from experiments.errors import StarbenchError
from experiments.train.device import resolve_device


def test_auto_and_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("name,message", [
    ("tpu", "unknown trainer.device 'tpu'; use auto, cpu, cuda or cuda:N"),
    ("meta", "trainer.device=meta: starbench runs on cpu or cuda"),  # torch knows it; training there cannot work
])
def test_names_that_are_not_a_training_device(name, message):
    with pytest.raises(StarbenchError, match=message):
        resolve_device(name)


def test_a_cuda_device_this_machine_does_not_have(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(StarbenchError, match="no CUDA device; use auto or cpu"):
        resolve_device("cuda", key="--device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(StarbenchError, match=r"cuda:7 but this machine has 2 CUDA device\(s\) \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:7")
