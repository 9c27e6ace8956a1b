"""Tasks: what ``task.name`` runs. Each module declares a ``TASK`` (``base.Task``: name, ``run(cfg, run_dir)``,
optional ``sweep_report`` and ``check(cfg)``); they are registered here, explicitly, in ``TASKS``. A new task: a module (or
package) under ``experiments/tasks/`` with its ``TASK``, one line below, and ``conf/task/<name>.yaml``."""
from . import classify, detect, moons
from .base import Task, TaskRegistry, TaskSpec

TASKS = TaskRegistry([classify.TASK, detect.TASK, moons.TASK])

__all__ = ["TASKS", "Task", "TaskRegistry", "TaskSpec"]
