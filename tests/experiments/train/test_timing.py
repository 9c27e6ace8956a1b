"""The benchmarks' timing harness: warm-up, interleaved (and alternating) rounds, best-of, sync, JSON."""
import json

import pytest

from experiments.train.timing import interleaved, quartiles, write_json


def test_rounds_interleave_the_sides_and_warm_up_first():
    calls = []
    sides = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    timed = interleaved(sides, rounds=3, warmup={"a": 2, "b": 1}, alternate=True)
    assert calls == ["a", "a", "b",  "a", "b", "b", "a", "a", "b"]
    assert [len(v) for v in timed.times.values()] == [3, 3] and set(timed.warmup_s) == {"a", "b"}
    assert all(t >= 0 for v in timed.times.values() for t in v)


def test_best_of_iters_and_sync():
    calls, syncs = [], []
    timed = interleaved({"x": lambda: calls.append(1)}, rounds=2, iters=3, best_of=2, sync=lambda: syncs.append(1))
    assert len(calls) == 2 * 2 * 3 and len(timed.times["x"]) == 2
    assert len(syncs) == 1 + 2 * 2 * 2  # after the warm-up, then around every timed stretch
    assert timed.median("x") == pytest.approx(sorted(timed.times["x"])[0] / 2 + sorted(timed.times["x"])[1] / 2)


def test_quartiles_and_json(tmp_path):
    assert quartiles([1.0, 2.0, 3.0, 4.0, 5.0])[1] == 3.0
    write_json(None, {"ignored": True})  # no --json given: nothing written
    write_json(tmp_path / "t.json", {"ms": [1.5]})
    assert json.loads((tmp_path / "t.json").read_text()) == {"ms": [1.5]}
