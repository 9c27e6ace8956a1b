"""What a task is, and the registry that finds one by its ``task.name``.

A task turns one composed config into one run dir: ``run(cfg, run_dir) -> record`` (the final metrics.json
record). It may add its own section to a sweep's summary.md: ``sweep_report(sweep_dir, jobs) -> lines``
(``jobs``: that task's ``experiments.analysis.Job``s), and refuse a config before anything is written:
``check(cfg)`` raises a one-line ``StarbenchError`` without loading data or touching a file (``run.py`` calls it
before Hydra creates the run dir, and for every value a multirun sweeps before its first job).
``experiments.entry`` runs tasks, and hands their reports to ``experiments.analysis.aggregate``; tasks themselves
import only from the layers below.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple, runtime_checkable

from omegaconf import DictConfig

from ..errors import StarbenchError

RunFn = Callable[[DictConfig, Path], Dict[str, Any]]
SweepReport = Callable[[Path, Sequence[Any]], List[str]]
CheckFn = Callable[[DictConfig], None]


@runtime_checkable
class Task(Protocol):
    """The protocol: a name (``task.name`` in the config), ``run``, an optional ``sweep_report`` (and ``check``)."""
    name: str
    run: RunFn
    sweep_report: Optional[SweepReport]
    # and, optionally, check: Optional[CheckFn] (TaskSpec has it; a Task class without one is not checked)


@dataclass(frozen=True)
class TaskSpec:
    """A ``Task`` made of plain functions: ``TaskSpec("moons", run, sweep_report)``."""
    name: str
    run: RunFn
    sweep_report: Optional[SweepReport] = None
    check: Optional[CheckFn] = None


class TaskRegistry:
    """Tasks by name, in registration order (the order error messages list them in)."""

    def __init__(self, tasks: Sequence[Task] = ()):
        self._tasks: Dict[str, Task] = {}
        for task in tasks:
            self.register(task)

    def register(self, task: Task) -> Task:
        if not isinstance(task, Task):
            raise TypeError(f"{task!r} is not a Task (needs name, run and sweep_report)")
        if task.name in self._tasks:
            raise ValueError(f"task '{task.name}' is already registered")
        self._tasks[task.name] = task
        return task

    def get(self, name: str) -> Task:
        if name not in self._tasks:
            raise StarbenchError(f"unknown task '{name}'; valid: {', '.join(self._tasks)}")
        return self._tasks[name]

    def check(self, cfg: DictConfig) -> None:
        """``cfg``'s task's own check (nothing for a task without one); an unknown ``task.name`` fails here too."""
        check = getattr(self.get(cfg.task.name), "check", None)  # optional: a Task class may leave it out
        if check is not None:
            check(cfg)

    def names(self) -> Tuple[str, ...]:
        return tuple(self._tasks)

    def sweep_reports(self) -> Dict[str, SweepReport]:
        """name -> sweep_report, for the tasks that have one."""
        return {name: t.sweep_report for name, t in self._tasks.items() if t.sweep_report is not None}

    def __contains__(self, name: object) -> bool:
        return name in self._tasks
