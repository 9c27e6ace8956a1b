"""What a run leaves on disk: ``metrics.json`` and every other file replaced through ``atomic_write`` (a crash
or a full disk leaves the old file or the new one, never half, and no temp file) and the one-line form of an
error that ends a run."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, Optional

from ..errors import Interrupted, StarbenchError
from .lock import storage_error

METRICS_FILE = "metrics.json"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """The one way starbench replaces a file (``metrics.json``, ``last.pt``, ``.hydra/``): ``write(f)`` fills a
    temp file beside ``path``, which is synced and renamed over it, so a crash leaves the old file or the new one,
    never half. On any failure (a full disk, a kill, an error in ``write``) the temp file is removed and ``path``
    keeps its last good content; a storage error is one line naming the file (``StarbenchError``)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise storage_error(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it owner-only; give it a normal file's mode
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        cause = _os_error_in(e)  # torch.save turns a full disk into a RuntimeError of its zip writer
        if cause is not None:
            raise storage_error(path, cause) from None
        raise


def _os_error_in(exc: BaseException) -> Optional[OSError]:
    """The OSError an exception is, or was raised while handling (``__context__``/``__cause__``)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def read_metrics(run_dir: Path, strict: bool = False) -> Optional[Dict[str, Any]]:
    """A run dir's ``metrics.json``, or None when it has none. One that is not a JSON record (a hand edit, a disk
    that lost blocks) is None too, unless ``strict``: then a one-line ``StarbenchError``, for the callers that would
    otherwise replace it (``experiments.entry.run_job``: a run's only record of what it did is not rewritten
    unread)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        problem = None if isinstance(record, dict) else f"a JSON {type(record).__name__}, not a record"
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        record, problem = None, " ".join(str(e).split())
    if problem is None:
        return record
    if strict:
        raise StarbenchError(f"{path} is not a readable run record ({problem}); it is left as it is: move it aside "
                             f"(mv {path} {path}.bad) to rerun this job from its checkpoint, or choose another "
                             "hydra.run.dir")
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
