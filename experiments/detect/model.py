"""``experiments.detect.model.StarNetBackbone``, the name pickled in detector checkpoints written before 2026-12-01;
see the package docstring for when to delete this module."""
from experiments.tasks.detect.model import StarNetBackbone  # noqa: F401
