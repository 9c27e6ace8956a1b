"""What code and machine a run ran on, kept in its metrics.json as ``provenance``: results are reproducible bit for
bit only on the same code, torch, CPU kind and thread count (docs/reproduction.md), so a record names them.

Not part of a run's identity (the config hash): a run resumed after a code change keeps its hash and gets the
provenance of the process that finished it."""
from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Optional

ROOT = Path(__file__).resolve().parents[2]  # the checkout that holds experiments/


def _git(*args: str) -> Optional[str]:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):  # no git, or a hung one: never block a run on it
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def run_provenance() -> Dict[str, Any]:
    """``git_commit`` (None outside a git checkout) and ``git_dirty`` (tracked files changed since it), the
    versions of Python and torch, and the CPU's model name."""
    import torch
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"git_commit": commit, "git_dirty": bool(status) if status is not None else None,
            "python": platform.python_version(), "torch": torch.__version__, "cpu": _cpu()}
