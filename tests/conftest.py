import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
sys.path.insert(0, str(ROOT))
# tests/ is a package now (tests/starnet/ must not shadow the starnet package): the flat test files that still
# say ``from conftest import ...`` find this module here until they import ``tests.conftest``. Appended, so that
# tests/starnet and tests/demonet never come before the real packages.
sys.path.append(str(Path(__file__).resolve().parent))

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
