"""The task's path before it moved to ``experiments.tasks.detect`` (2026-12-01), kept for one reason: ultralytics
checkpoints pickle the whole model, and those written before the move name their backbone
``experiments.detect.model.StarNetBackbone``; unpickling imports that module. Among them are the detect_op runs
behind docs/results/detect_op (its checkpoint check re-evaluates their ``best.pt``). Nothing else may import this
package.

Delete it (with ``model.py``, ``_old_paths`` in ``experiments/tasks/detect/model.py`` and
tests/experiments/detect/test_pickles.py) when no checkpoint written before 2026-12-01 must load any more.
Loading such a checkpoint once and saving it again (``torch.save`` of what ``torch.load(path, weights_only=False)``
returns) writes the current path, after which it needs neither.
"""
