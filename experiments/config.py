"""Config helpers every layer may use (the bottom of ``experiments/``, next to ``errors.py``)."""
from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf


def plain(value: Any) -> Any:
    """An OmegaConf node as plain Python (interpolations resolved), a tuple as a list, anything else as is:
    what a model constructor, a YAML dump or a JSON record wants."""
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    return list(value) if isinstance(value, tuple) else value
