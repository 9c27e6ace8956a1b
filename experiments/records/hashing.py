"""The config hash: what a job computes, so that a relaunched sweep can tell a finished job from a changed one, and
the keys it leaves out (``NON_RESULT_KEYS``: where and how fast a job runs)."""
from __future__ import annotations

import hashlib
import json

from omegaconf import DictConfig, OmegaConf

from starnet.kernels.accelerate import SWITCHES

# Knobs that change where or how fast a job runs, not what it computes. The CPU fast paths compute PyTorch's math
# to float rounding (tests/starnet/kernels), as a different thread count does; where memory comes from
# (reuse_freed_memory) changes nothing computed. The kernel switches are KernelOptions' fields.
FAST_PATH_KEYS = tuple(f"trainer.{k}" for k in ("fast_paths", *SWITCHES, "reuse_freed_memory"))
NON_RESULT_KEYS = ("logger", "paths", "trainer.threads", "trainer.device", "task.threads", "task.device", "data.root",
                   "data.workers", "data.cache_dir", *FAST_PATH_KEYS)


# Keys added to a data option after runs of it were recorded: (data.name, key) -> the value that computes what those
# runs computed, dropped from the hash at that value so that they keep their hash (and still count as done or
# resume). data=yolo's subset sizes: null = the whole split.
ADDED_DATA_DEFAULTS = {("yolo", "train_size"): None, ("yolo", "val_size"): None}


def config_hash(cfg: DictConfig) -> str:
    """Identifies what a job computes, so a relaunched sweep can tell a finished job from a changed one."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    for key in NON_RESULT_KEYS:
        parent, _, leaf = key.rpartition(".")
        node = plain.get(parent, {}) if parent else plain
        if isinstance(node, dict):
            node.pop(leaf, None)
    data = plain.get("data")
    if isinstance(data, dict):
        for (name, key), value in ADDED_DATA_DEFAULTS.items():
            if data.get("name") == name and key in data and data[key] == value:
                data.pop(key)
    return hashlib.sha1(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()[:12]
