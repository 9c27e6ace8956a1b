"""trainer.threads=auto: the choice rule, the probe (with a fake step whose speed depends on the thread
count), that the probe leaves the run alone, and a run that records and resumes with its count."""
import time

import pytest
import torch

from demonet import DemoNet
from experiments.entry import run_job
from experiments.errors import StarbenchError
from experiments.train import threads as th


@pytest.mark.parametrize("times, expected", [
    ({1: 0.0740, 2: 1.0200}, 1),    # another job on the cores: all cores collapse
    ({1: 0.115, 2: 0.073}, 2),      # idle machine: all cores 1.57x faster
    ({1: 0.100, 2: 0.096}, 1),      # within the 5% tolerance: fewer threads
    ({1: 0.100, 2: 0.094}, 2),      # just outside it
    ({1: 9.0, 4: 3.0, 8: 2.0, 16: 2.05}, 8),
])
def test_pick(times, expected):
    assert th.pick(times) == expected


@pytest.mark.parametrize("times", [{}, {1: 0.1, 2: -1.0}, {1: float("nan")}, {1: float("inf")}])
def test_pick_rejects_bad_times(times):
    with pytest.raises(ValueError):
        th.pick(times)


@pytest.mark.parametrize("most, expected", [(1, [1]), (2, [1, 2]), (3, [1, 3]), (4, [1, 2, 4]),
                                             (16, [1, 4, 8, 16])])
def test_candidates(most, expected):
    assert th.candidates(most) == expected


def test_candidates_need_a_core():
    with pytest.raises(ValueError):
        th.candidates(0)


@pytest.mark.parametrize("value", [None, "auto", 1, 3])
def test_parse_threads_accepts(value):
    assert th.parse_threads(value) == value


@pytest.mark.parametrize("value", [0, -2, "fast", True, 1.5, "2"])
def test_parse_threads_rejects_in_one_line(value):
    with pytest.raises(StarbenchError, match=r"trainer.threads must be a positive integer, 'auto' or null") as e:
        th.parse_threads(value)
    assert "\n" not in str(e.value)


def test_max_threads_honours_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert th.max_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "")
    assert th.max_threads() >= 1


def fake_step(slow_at: int, slow_s: float = 0.06, fast_s: float = 0.001):
    """A 'training step' that takes slow_s at ``slow_at`` threads and fast_s otherwise."""
    def step():
        time.sleep(slow_s if torch.get_num_threads() == slow_at else fast_s)
    return step


@pytest.mark.parametrize("slow_at, expected", [(2, 1), (1, 2)])
def test_probe_times_each_count_and_restores_threads(slow_at, expected):
    before = torch.get_num_threads()
    times = th.probe(fake_step(slow_at), [1, 2], rounds=3)  # best round each: robust to a busy machine
    assert set(times) == {1, 2} and times[slow_at] > 3 * times[3 - slow_at]
    assert th.pick(times) == expected
    assert torch.get_num_threads() == before


def test_choose_threads():
    calls = []

    def fake_probe(step, counts):
        calls.append(counts)
        torch.rand(3)  # draws from the global stream: choose_threads must give it back untouched
        return {1: 0.5, 2: 0.1}
    assert th.choose_threads(None, None, most=2) == (2, None)   # null: all cores, no probe
    assert th.choose_threads(1, None, most=2) == (1, None)
    assert th.choose_threads("auto", lambda: None, most=1) == (1, None)  # one core: nothing to probe
    torch.manual_seed(0)
    expected = torch.rand(2)
    torch.manual_seed(0)
    assert th.choose_threads("auto", lambda: None, most=2, probe_fn=fake_probe) == (2, {1: 0.5, 2: 0.1})
    assert torch.equal(torch.rand(2), expected) and calls == [[1, 2]]
    with pytest.raises(StarbenchError):
        th.choose_threads(0, None, most=2)


def test_training_step_leaves_the_model_alone():
    torch.manual_seed(0)
    model = DemoNet(width=8, depth=2, op="star", num_classes=10, in_chans=1, patch_size=7, drop_path=0.1).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    step = th.training_step(model, 8, (1, 28, 28), 10)
    step()
    step()
    assert not model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_auto_run_records_its_threads_and_resume_keeps_them(tiny_cfg, tmp_path, monkeypatch):
    probes = []

    def fake_probe(step, counts):
        step()  # the real probed step runs (the run's model, batch and layout)
        probes.append(counts)
        return {1: 0.3, 2: 0.1} if len(probes) == 1 else {1: 0.1, 2: 0.3}
    monkeypatch.setattr(th, "max_threads", lambda: 2)
    monkeypatch.setattr(th, "probe", fake_probe)
    monkeypatch.setattr(th.choose_threads, "__defaults__", (None, fake_probe))
    record = run_job(tiny_cfg("trainer.epochs=1", "trainer.threads=auto"), tmp_path / "run")
    assert record["status"] == "completed" and record["threads"] == 2 and probes == [[1, 2]]
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["threads"] == 2
    # resumed for a second epoch (the task itself: run_job would refuse a completed run's dir): the
    # checkpoint's count, not a new probe (which would say 1)
    from experiments.tasks.classify import run as classify
    record = classify(tiny_cfg("trainer.epochs=2", "trainer.threads=auto"), tmp_path / "run")
    assert record["epoch"] == 2 and record["threads"] == 2 and len(probes) == 1
    # a fresh run probes again
    record = run_job(tiny_cfg("trainer.epochs=1", "trainer.threads=auto"), tmp_path / "fresh")
    assert record["threads"] == 1 and len(probes) == 2


def test_auto_is_the_default_and_bad_threads_fail_before_training(tiny_cfg, tmp_path):
    from tests.conftest import compose_cfg
    assert compose_cfg().trainer.threads == "auto"
    with pytest.raises(StarbenchError, match="trainer.threads must be"):
        run_job(tiny_cfg("trainer.threads=0"), tmp_path / "run")


def test_probe_drops_a_collapsed_count_after_its_warm_up():
    calls = {1: 0, 2: 0}

    def step():
        n = torch.get_num_threads()
        calls[n] += 1
        time.sleep(0.05 if n == 2 else 0.001)
    times = th.probe(step, [1, 2], rounds=3)
    assert th.pick(times) == 1
    # 1 thread: the first step, its warm-up and 3 rounds of 2 steps; 2 threads: its warm-up alone
    assert calls == {1: 8, 2: 1}


def test_the_threads_default_does_not_change_config_hashes():
    """trainer.threads is a NON_RESULT_KEY: runs recorded with null (the old default) or 1 keep their hash."""
    from experiments.records import config_hash
    from tests.conftest import compose_cfg
    base = config_hash(compose_cfg())
    assert all(config_hash(compose_cfg(f"trainer.threads={v}")) == base for v in ("null", 1, 2))
