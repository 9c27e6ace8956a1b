"""Stopping a run or a sweep with SIGINT (Ctrl-C) or SIGTERM (SLURM's stop), the same way under every launcher.

``STOP`` is this process's record of the first stop signal it got for the job it runs, wherever the signal arrived:
in the sweep's handler while the job was still setting up (``catch_stop_signals``) or in the trainer's while it
trained (``STOP.caught_while_training``). One record serves both, so that a job signalled during its set-up stops
at its first step instead of training on, and so that "a second Ctrl-C" means this process was interrupted twice,
not that another process of the sweep (the launcher, a sibling worker: a terminal's Ctrl-C reaches the whole
process group) saw one first.

A sweep is stopped through a marker file in its dir, named in the environment (which joblib's worker processes
inherit) by the launching process when the multirun starts (``start_sweep``). A signal there, or in a job, writes
it (``stop_sweep``): queued jobs then do not start (``job_may_start``), running ones checkpoint and return (the
trainer), and the launching process exits with 128 + the signal number once its launcher returns
(``exit_if_sweep_stopped``). ``run.py`` and ``experiments.hydra_callbacks`` call into this module, and the trainer
reads ``STOP``; nothing else stops a run or a sweep.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
SWEEP_ENV = "STARBENCH_SWEEP"


class StopSignals:
    """The first stop signal this process received for its current job (later ones do not replace it)."""

    def __init__(self) -> None:
        self._received: Optional[signal.Signals] = None

    def note(self, sig: signal.Signals) -> None:
        self._received = self._received or sig

    def received(self) -> Optional[signal.Signals]:
        return self._received

    def should_stop(self) -> bool:
        return self._received is not None

    def forget(self) -> None:
        """A new job starts in this process (a sweep's worker runs many; tests run many in one process)."""
        self._received = None

    @contextmanager
    def caught_while_training(self) -> Iterator[bool]:
        """While training: SIGINT/SIGTERM are noted (the step finishes, checkpoints, the run exits) instead of
        raising, and a second Ctrl-C stops at once. Yields whether signals are caught: they reach the main thread
        only, so a trainer in another thread is not stopped by them."""
        if threading.current_thread() is not threading.main_thread():
            yield False
            return

        def handler(signum, frame) -> None:
            self.note(signal.Signals(signum))
            if signum == signal.SIGINT:  # a second Ctrl-C stops at once
                signal.signal(signal.SIGINT, signal.default_int_handler)

        previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
        if self._received == signal.SIGINT:  # a Ctrl-C while the job set up: a Ctrl-C now is the second
            signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            yield True
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)


STOP = StopSignals()  # one per process


# -- a sweep ------------------------------------------------------------------------------------------------------
def start_sweep(sweep_dir) -> None:
    """In the launching process, when a multirun starts: name the stop marker, catch SIGINT/SIGTERM."""
    marker = Path(sweep_dir).resolve() / f".stopped-{os.getpid()}"
    marker.unlink(missing_ok=True)
    os.environ[SWEEP_ENV] = f"{os.getpid()}:{marker}"
    catch_stop_signals()


def _marker() -> Optional[Path]:
    value = os.environ.get(SWEEP_ENV)
    return Path(value.split(":", 1)[1]) if value else None


def in_launching_process() -> bool:
    """False in a worker process of the joblib (or another) launcher."""
    value = os.environ.get(SWEEP_ENV)
    return value is None or value.split(":", 1)[0] == str(os.getpid())


def stop_sweep(sig: signal.Signals) -> None:
    """Record that the sweep was stopped by ``sig`` (the first signal counts)."""
    marker = _marker()
    if marker is not None and not marker.exists():
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(sig.name)
        except OSError:
            pass


def sweep_stopped() -> Optional[signal.Signals]:
    marker = _marker()
    try:
        return signal.Signals[marker.read_text().strip()] if marker is not None and marker.exists() else None
    except (OSError, KeyError):
        return signal.SIGTERM


def end_sweep() -> Optional[signal.Signals]:
    """In the launching process, when the launcher returned: the signal that stopped the sweep (marker removed)."""
    sig = sweep_stopped()
    marker = _marker()
    if marker is not None:
        marker.unlink(missing_ok=True)
    return sig


def exit_if_sweep_stopped(sweep_dir) -> None:
    """In the launching process, when the launcher returned (the sweep's summary callback): a sweep stopped by a
    signal exits with 128 + its number, resumable, without a summary of half a sweep."""
    stopped = end_sweep()
    if stopped is not None:
        print(f"starbench: sweep stopped by {stopped.name}; rerun the same command to resume it "
              f"(python scripts/aggregate.py {sweep_dir} summarizes what is done)", file=sys.stderr)
        sys.exit(128 + int(stopped))


def catch_stop_signals() -> None:
    """SIGINT/SIGTERM outside training (the trainer has its own handler while it trains) mark the sweep stopped
    instead of raising KeyboardInterrupt into a launcher's loop; a second Ctrl-C stops at once."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        sig = signal.Signals(signum)
        if sig == signal.SIGINT and STOP.received() == signal.SIGINT:  # this process's second Ctrl-C
            print("starbench: stopped at once by a second Ctrl-C", file=sys.stderr)
            sys.exit(130)
        STOP.note(sig)
        stop_sweep(sig)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)


def job_may_start(multirun: bool) -> bool:
    """At the start of each job: False when its sweep was stopped (a queued job does not start; the launching
    process, which runs the jobs under the basic launcher, exits with 128 + the signal number). Otherwise the
    job's record of signals starts empty, and a sweep's worker process catches signals between its jobs (they
    stop the sweep, not the worker)."""
    if multirun:
        stopped = sweep_stopped()
        if stopped is not None:
            if in_launching_process():
                end_sweep()
                sys.exit(128 + int(stopped))
            return False
    STOP.forget()
    if multirun and not in_launching_process():
        catch_stop_signals()
    return True


def job_interrupted(exit_code: int, multirun: bool) -> None:
    """A job stopped by a signal (resumable): the whole sweep stops too. A worker marks the sweep stopped and
    returns (the launching process exits once its launcher returns); otherwise this process exits with
    ``exit_code``."""
    if multirun and not in_launching_process():
        stop_sweep(signal.Signals(exit_code - 128))
        return
    end_sweep()
    sys.exit(exit_code)
