"""The task registry (``experiments.tasks``): what ``task.name`` runs, and which tasks add to a sweep summary."""
import pytest

from experiments.errors import StarbenchError
from experiments.tasks import TASKS, Task, TaskRegistry, TaskSpec


def test_built_in_tasks_are_registered_in_order():
    assert TASKS.names() == ("classify", "detect", "moons")
    assert set(TASKS.sweep_reports()) == {"detect", "moons"}
    assert all(isinstance(TASKS.get(name), Task) for name in TASKS.names())


def test_unknown_task_lists_the_valid_ones():
    with pytest.raises(StarbenchError, match="unknown task 'segment'; valid: classify, detect, moons"):
        TASKS.get("segment")


def test_a_registered_task_runs_and_reports(tmp_path):
    registry = TaskRegistry()
    task = registry.register(TaskSpec("echo", lambda cfg, run_dir: {"status": "completed", "cfg": cfg},
                                      lambda sweep_dir, jobs: [f"{len(jobs)} jobs"]))
    assert registry.get("echo") is task and "echo" in registry
    assert registry.get("echo").run({"x": 1}, tmp_path)["cfg"] == {"x": 1}
    assert registry.sweep_reports()["echo"](tmp_path, [1, 2]) == ["2 jobs"]
    with pytest.raises(ValueError, match="already registered"):
        registry.register(TaskSpec("echo", task.run))
    with pytest.raises(TypeError, match="not a Task"):
        registry.register(object())
