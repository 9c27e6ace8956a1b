"""Stop signals and a sweep's stop marker (``experiments.train.stopping``); the signals themselves, end to end, are
``tests/e2e/test_crash.py``'s."""
import os
import signal

import pytest

from experiments.train import stopping
from experiments.train.stopping import StopSignals


def test_the_first_signal_counts_until_the_next_job():
    stops = StopSignals()
    assert not stops.should_stop() and stops.received() is None
    stops.note(signal.SIGTERM)
    stops.note(signal.SIGINT)
    assert stops.should_stop() and stops.received() == signal.SIGTERM
    stops.forget()
    assert not stops.should_stop()


def test_training_catches_signals_then_gives_the_handlers_back():
    stops = StopSignals()
    before = {sig: signal.getsignal(sig) for sig in stopping.STOP_SIGNALS}
    with stops.caught_while_training() as catching:
        assert catching
        os.kill(os.getpid(), signal.SIGTERM)  # noted, not fatal: the step finishes and checkpoints
        assert stops.received() == signal.SIGTERM
    assert {sig: signal.getsignal(sig) for sig in stopping.STOP_SIGNALS} == before


def test_a_ctrl_c_during_set_up_makes_the_next_one_stop_at_once():
    stops = StopSignals()
    stops.note(signal.SIGINT)
    with stops.caught_while_training():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)


def test_a_stopped_sweep_starts_no_more_jobs(tmp_path, monkeypatch):
    monkeypatch.delenv(stopping.SWEEP_ENV, raising=False)
    previous = {sig: signal.getsignal(sig) for sig in stopping.STOP_SIGNALS}
    try:
        stopping.start_sweep(tmp_path)
        assert stopping.in_launching_process() and stopping.job_may_start(multirun=True)
        stopping.stop_sweep(signal.SIGTERM)
        stopping.stop_sweep(signal.SIGINT)  # the first counts
        assert stopping.sweep_stopped() == signal.SIGTERM
        with pytest.raises(SystemExit) as stopped:  # the launching process (basic launcher) exits
            stopping.job_may_start(multirun=True)
        assert stopped.value.code == 128 + signal.SIGTERM
        assert stopping.sweep_stopped() is None  # end_sweep removed the marker
        stopping.stop_sweep(signal.SIGTERM)
        monkeypatch.setenv(stopping.SWEEP_ENV, f"1:{tmp_path / f'.stopped-{os.getpid()}'}")  # a worker's view
        assert not stopping.in_launching_process() and not stopping.job_may_start(multirun=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
