import subprocess
import sys

from experiments.entry import run_job

# In a new process, as a job starts: a few training steps of a small DemoNet (PyTorch's plain ops), then the minor
# page faults per step (each the first write to a new page).
_FAULTS = """
import resource, sys, torch
from demonet import DemoNet
from experiments.train.allocator import reuse_freed_memory
torch.set_num_threads(1)
took = reuse_freed_memory(sys.argv[1] == "on")
torch.manual_seed(0)
model = DemoNet(16, 2, num_classes=10, in_chans=1, patch_size=4)
x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
def step():
    model.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
for _ in range(3):
    step()
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(took, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / 5)
"""


def _faults(setting: str):
    out = subprocess.run([sys.executable, "-c", _FAULTS, setting], capture_output=True, text=True, check=True)
    took, faults = out.stdout.split()
    return took == "True", float(faults)


def test_reused_memory_is_not_faulted_in_again():
    took, reused = _faults("on")
    if not took:
        import pytest
        pytest.skip("no glibc mallopt on this machine")
    _, fresh = _faults("off")
    assert fresh >= 500  # ~5,500 per step here: the step's activations on new pages every time
    assert reused < fresh / 10


def test_trainer_sets_it_on_cpu_and_off_with_the_plain_path(tiny_cfg, tmp_path, monkeypatch):
    import experiments.train.fast_paths as fast_paths
    seen = []
    monkeypatch.setattr(fast_paths, "reuse_freed_memory", seen.append)
    for name, extra in (("fast", ()), ("plain", ("trainer.fast_paths=false",)),
                        ("off", ("trainer.reuse_freed_memory=false",))):
        assert run_job(tiny_cfg("trainer.epochs=1", *extra), tmp_path / name)["status"] == "completed"
    assert seen == [True, False, False]
