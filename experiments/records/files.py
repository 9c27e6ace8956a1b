"""What a run leaves on disk: ``metrics.json`` (written atomically: a crash leaves the old file or the new
one, never half) and the one-line form of an error that ends a run."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional

from ..errors import Interrupted, StarbenchError

METRICS_FILE = "metrics.json"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file + rename, so a crash leaves the old file or the new one, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it owner-only; give it a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_metrics(run_dir: Path) -> Optional[Dict[str, Any]]:
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def one_line(exc: BaseException) -> str:
    """An exception as one readable line: bad input speaks for itself, a bug names its type."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, (StarbenchError, ValueError, LookupError)) else f"{type(exc).__name__}: {text}"


def status_of(exc: BaseException) -> str:
    """``interrupted`` (resumable: SIGTERM, Ctrl-C) or ``failed``."""
    return "interrupted" if isinstance(exc, (KeyboardInterrupt, Interrupted)) else "failed"


def write_failure(run_dir: Path, info: Dict[str, Any], exc: BaseException) -> None:
    """Mark a run failed/interrupted, keeping what it recorded so far (or the identity fields)."""
    record = read_metrics(run_dir) or {**info, "run_dir": str(run_dir), "wandb_dir": None, "history": []}
    record.update(status=status_of(exc), error=one_line(exc))
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(run_dir) / METRICS_FILE, json.dumps(record, indent=2, default=str))
