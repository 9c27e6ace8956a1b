"""The first stop signal (SIGINT or SIGTERM) this process received for the job it is running, wherever it arrived:
in the sweep's handler while the job was still setting up (``experiments.entry``) or in the trainer's while it
trained. One record serves both so that a job signalled during its set-up stops at its first step instead of
training on, and so that "a second Ctrl-C" means this process was interrupted twice, not that another process of
the sweep (the launcher, a sibling worker: a terminal's Ctrl-C reaches the whole process group) saw one first."""
from __future__ import annotations

import signal
from typing import Optional

_received: Optional[signal.Signals] = None


def note(sig: signal.Signals) -> None:
    """Record ``sig`` (the first one counts)."""
    global _received
    _received = _received or sig


def received() -> Optional[signal.Signals]:
    return _received


def forget() -> None:
    """A new job starts in this process (a sweep's worker runs many; tests run many in one process)."""
    global _received
    _received = None
