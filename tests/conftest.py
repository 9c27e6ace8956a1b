import os
import tempfile
from pathlib import Path

import pytest
import torch

import experiments.config  # noqa: F401  (registers the config schema in Hydra's ConfigStore before any compose)

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

# Tests never talk to W&B's servers and never prompt.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# The per-user baseline cache (experiments/analysis/baseline.py) is the session's own: a test never reads a value a
# user's runs (or an older test session) left, and never writes into the user's cache. Subprocesses inherit it.
os.environ["STARBENCH_CACHE"] = tempfile.mkdtemp(prefix="starbench-cache-")
SESSION_THREADS = torch.get_num_threads()  # before any test changes it


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """A run in this process may set torch's thread count (the moons task uses 1 thread; module-scoped fixtures
    run such jobs before any test of theirs): after each test it is put back to the session's, so that no test
    sees another's setting."""
    yield
    torch.set_num_threads(SESSION_THREADS)


@pytest.fixture(autouse=True)
def _hydra_config_cleared():
    """Hydra keeps a job's config in a process-wide singleton (``HydraConfig``) that the sweep check and the
    callbacks' tests set: cleared after each test, so that a later test's ``run_job`` outside Hydra does not see a
    Hydra job and write that job's ``.hydra/`` into its run dir (CI failed test_export that way, by test order)."""
    yield
    from hydra.core.hydra_config import HydraConfig
    HydraConfig.instance().cfg = None


def compose_cfg(*overrides: str):
    """The config `python run.py <overrides>` would get (without the hydra node)."""
    from hydra import compose, initialize_config_dir
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides))


TINY = ("data=synthetic", "width=8", "depth=2", "trainer.epochs=2", "trainer.batch_size=64",
        "trainer.eval_batch_size=256", "data.train_size=256", "data.val_size=128", "logger=none")


def load_run_py():
    """``run.py`` (the entry script at the repository root, not a package module) as a module object."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("run", ROOT / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny_cfg():
    def make(*extra: str):
        return compose_cfg(*TINY, *extra)
    return make


def write_fashion_mnist(root: Path, n_train: int = 256, n_test: int = 128) -> Path:
    """A tiny stand-in for Fashion-MNIST in ``root`` (its four gzipped idx files): each class a fixed random
    pattern plus noise, so that a model and the linear baseline learn something. Tests never download it."""
    import numpy as np
    from tests.experiments.data.test_small import write_idx
    rng = np.random.default_rng(0)
    patterns = rng.integers(0, 256, (10, 28, 28))
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = np.clip(patterns[labels] + rng.normal(0, 60, (n, 28, 28)), 0, 255)
        write_idx(root / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{split}-labels-idx1-ubyte.gz", labels)
    return root
