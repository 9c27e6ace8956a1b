"""One owner per run dir: an exclusive advisory lock on ``<run_dir>/owner.lock`` (``fcntl.flock``), held for as
long as a process writes the run's files, with the holder (host, pid, start time) written inside it.

What it promises (docs/failures.md, "Ownership"):

- Two processes on one machine, or on two machines sharing a local or NFS file system (NFSv4, or NFSv3 with
  lockd; Linux clients turn ``flock`` into a whole-file POSIX lock the server arbitrates), never own one run dir
  at once: the second gets ``RunDirBusy`` naming the holder.
- The kernel drops the lock when its holder dies, however it dies (``kill -9`` included): a relaunch never waits
  for a stale lock. A *host* that vanishes holds an NFS lock until the server's lease runs out (NFSv4: ~90 s).
- File systems without working ``flock`` (Lustre mounted without ``-o flock``, NFS mounted ``nolock`` counts as
  local-only): the run goes on unlocked with a warning that says so; ``nolock`` cannot be detected.
- The lock file is never deleted (deleting it would let two processes lock two different inodes); it is empty
  while no one holds it.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from ..errors import StarbenchError

log = logging.getLogger("starbench")

LOCK_FILE = "owner.lock"
_BUSY = {errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK}
_UNSUPPORTED = {errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK, errno.EINVAL}


class RunDirBusy(StarbenchError):
    """Another live process owns this run dir."""

    def __init__(self, run_dir: Path, holder: str):
        super().__init__(f"{run_dir} is in use by {holder}; wait for it to finish, or choose another hydra.run.dir")
        self.run_dir, self.holder = Path(run_dir), holder


def storage_error(path: Path, exc: OSError, doing: str = "write to") -> StarbenchError:
    """An OSError on a run dir as one line naming the path (``No space left on device``, ``Permission denied``)."""
    return StarbenchError(f"cannot {doing} {path}: {exc.strerror or exc}")


def check_writable_dir(path: Path, what: str = "run dir") -> None:
    """``path`` is (or can be made) a directory this process may write: checked before anything is written
    there, so a file in its place or a read-only parent is one line, not a traceback from deep inside."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise StarbenchError(f"{what} {path} exists and is not a directory; choose another")
    existing = path
    while not existing.exists():  # the nearest ancestor that exists must be a writable directory
        existing = existing.parent
    if not existing.is_dir():
        raise StarbenchError(f"{what} {path}: {existing} is not a directory; choose another")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise StarbenchError(f"{what} {path} is not writable ({existing}: permission denied); choose another")


def _describe(text: str) -> str:
    try:
        info = json.loads(text)
        return f"pid {info['pid']} on {info['host']} (started {info['started']})"
    except (ValueError, KeyError, TypeError):
        return "another process (it has not written its name yet)"


class RunDirLock:
    """``with RunDirLock(run_dir):`` owns the run dir or raises ``RunDirBusy`` at once (never waits)."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self.fd: Optional[int] = None

    def acquire(self) -> "RunDirLock":
        check_writable_dir(self.run_dir)
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as e:
            raise storage_error(self.run_dir, e) from None
        for attempt in range(6):  # a holder may be a moment away from writing its name, a prober from leaving
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno in _UNSUPPORTED:
                    os.close(fd)
                    log.warning("the file system of %s does not support file locks (%s): nothing stops a second "
                                "process from writing this run dir at once", self.run_dir, e.strerror)
                    return self
                if e.errno not in _BUSY:
                    os.close(fd)
                    raise storage_error(self.path, e, "lock") from None
                if attempt == 5:
                    text = self.path.read_text(errors="replace")
                    os.close(fd)
                    raise RunDirBusy(self.run_dir, _describe(text)) from None
                time.sleep(0.04)
        self.fd = fd
        me = {"host": socket.gethostname(), "pid": os.getpid(),
              "started": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        except OSError as e:  # a full disk: the lock holds all the same, only the name is missing
            log.warning("could not write the owner into %s: %s", self.path, e.strerror)
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)  # empty while free: `cat owner.lock` names the owner, or nothing
        except OSError:
            pass
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "RunDirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def holder(run_dir: Path) -> Optional[str]:
    """Who owns ``run_dir`` now ("pid 12 on node3 (started ...)"), or None when no live process does."""
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in _BUSY:
            return _describe(path.read_text(errors="replace"))
        return None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
